"""SqueezeNet-like net (Iandola et al. 2016, the v1.1 layout) with seeded random weights.

Fire modules: squeeze 1x1 conv + ReLU, then two expand branches (1x1 and 3x3 conv + ReLU) joined
by a Concat on channels. Like the original there is no BatchNorm: every conv has a bias. One
deliberate difference from torchvision's squeezenet1_1: the stem conv and the max pools are
padded (pad 1, floor mode) instead of unpadded with ceil_mode, so every resolution that is a
multiple of 32 gives whole feature maps (224 -> 112 -> 56 -> 28 -> 14).
"""

from __future__ import annotations

import onnx

from edgec.models.builder import GraphBuilder

# Calibration batch (see builder.py): fixed, so the weights do not depend on the resolution.
CALIB_SHAPE = (4, 3, 64, 64)

# (squeeze, expand) channels of the 8 fire modules; "M" is a 3x3/2 max pool (v1.1 layout).
FIRE_LAYOUT: list[tuple[int, int] | str] = [
    (16, 64), (16, 64), "M",
    (32, 128), (32, 128), "M",
    (48, 192), (48, 192), (64, 256), (64, 256),
]


def _fire(b: GraphBuilder, x: str, cin: int, squeeze: int, expand: int) -> str:
    """Fire module; output has 2 * expand channels."""
    s = b.relu(b.conv(x, cin, squeeze, 1, bias=True))
    e1 = b.relu(b.conv(s, squeeze, expand, 1, bias=True))
    e3 = b.relu(b.conv(s, squeeze, expand, 3, bias=True))
    return b.concat([e1, e3], axis=1)


def squeezenet(resolution: int = 224, num_classes: int = 1000, seed: int = 0) -> onnx.ModelProto:
    """SqueezeNet-like: input 'input' (1, 3, resolution, resolution), output 'output' (1, num_classes).

    conv 3x3/2 (64) + ReLU, MaxPool 3x3/2, 8 fire modules with two more max pools, classifier
    conv 1x1 to num_classes + ReLU, GlobalAveragePool, Flatten (as SqueezeNet: no Gemm).
    """
    if resolution < 32 or resolution % 32:
        raise ValueError(f"resolution must be a positive multiple of 32, not {resolution}")
    b = GraphBuilder("squeezenet", seed, "input", CALIB_SHAPE)
    x = b.relu(b.conv("input", 3, 64, 3, 2, bias=True))
    x = b.maxpool(x, 3, 2, pad=1)
    cin = 64
    for layer in FIRE_LAYOUT:
        if layer == "M":
            x = b.maxpool(x, 3, 2, pad=1)
            continue
        squeeze, expand = layer
        x = _fire(b, x, cin, squeeze, expand)
        cin = 2 * expand
    x = b.relu(b.conv(x, cin, num_classes, 1, bias=True, gain=0.5))
    x = b.node("GlobalAveragePool", [x], b.act[x].mean(axis=(2, 3), keepdims=True), "gap")
    b.node("Flatten", [x], b.act[x].reshape(b.act[x].shape[0], -1), output="output", axis=1)
    return b.finish("input", [1, 3, resolution, resolution], "output")

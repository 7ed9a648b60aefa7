"""MobileNetV2 (Sandler et al. 2018) with seeded random weights, as torchvision defines it."""

from __future__ import annotations

import onnx

from edgec.models.builder import GraphBuilder

# (expansion t, output channels c, repeats n, first stride s), from the paper's Table 2.
INVERTED_RESIDUAL_SETTING = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


# BN calibration batch (see builder.py): fixed, so the weights do not depend on the resolution.
CALIB_SHAPE = (4, 3, 64, 64)


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round channels to a multiple of 8, never more than 10% down (torchvision's rule)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _conv_bn(b: GraphBuilder, x: str, cin: int, cout: int, k: int, stride: int = 1,
             groups: int = 1, act: bool = True, gamma: tuple[float, float] = (0.5, 1.5)) -> str:
    y = b.batchnorm(b.conv(x, cin, cout, k, stride, groups=groups), cout, gamma)
    return b.relu6(y) if act else y


def _inverted_residual(b: GraphBuilder, x: str, cin: int, cout: int, stride: int, t: int) -> str:
    hidden = cin * t
    y = x
    if t != 1:
        y = _conv_bn(b, y, cin, hidden, 1)
    y = _conv_bn(b, y, hidden, hidden, 3, stride, groups=hidden)
    if stride == 1 and cin == cout:
        # Small projection scale on residual blocks keeps the running sum O(1) with depth.
        y = _conv_bn(b, y, hidden, cout, 1, act=False, gamma=(0.2, 0.5))
        return b.add(x, y)
    return _conv_bn(b, y, hidden, cout, 1, act=False)


def mobilenet_v2(resolution: int = 224, width: float = 1.0, num_classes: int = 1000,
                 seed: int = 0) -> onnx.ModelProto:
    """MobileNetV2: input 'input' (1, 3, resolution, resolution), output 'output' (1, num_classes).

    Stem conv 3x3/2 + BN + ReLU6, 17 inverted residual blocks, 1x1 conv to 1280 channels
    (kept at 1280 for width < 1, as torchvision does), GlobalAveragePool, Flatten, Gemm.
    """
    if resolution < 32 or resolution % 32:
        raise ValueError(f"resolution must be a positive multiple of 32, not {resolution}")
    if width <= 0:
        raise ValueError(f"width must be positive, not {width}")
    b = GraphBuilder("mobilenet_v2", seed, "input", CALIB_SHAPE)
    cin = make_divisible(32 * width)
    last = make_divisible(1280 * max(1.0, width))
    x = _conv_bn(b, "input", 3, cin, 3, 2)
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
        cout = make_divisible(c * width)
        for i in range(n):
            x = _inverted_residual(b, x, cin, cout, s if i == 0 else 1, t)
            cin = cout
    x = _conv_bn(b, x, cin, last, 1)
    x = b.flatten(b.global_avg_pool(x))
    b.gemm(x, last, num_classes, output="output")
    return b.finish("input", [1, 3, resolution, resolution], "output")

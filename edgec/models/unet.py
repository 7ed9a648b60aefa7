"""A small U-Net (Ronneberger et al. 2015) for segmentation, with seeded random weights.

Three 2x downsamplings; the decoder upsamples with Resize (nearest twice, bilinear once, as
PyTorch's nn.Upsample exports them) and concatenates the encoder's skip tensors on channels.
"""

from __future__ import annotations

import onnx

from edgec.models.builder import GraphBuilder

# BN calibration batch size (64x64 images, see builder.py).
CALIB_BATCH = 2
DEPTH = 3  # number of 2x downsamplings
# Upsampling mode per decoder level, deepest first: one bilinear among nearest ones.
UPSAMPLE_MODES = ["nearest", "linear", "nearest"]


def _double_conv(b: GraphBuilder, x: str, cin: int, cout: int) -> str:
    """(conv 3x3 + BN + ReLU) twice."""
    x = b.relu(b.batchnorm(b.conv(x, cin, cout, 3), cout))
    return b.relu(b.batchnorm(b.conv(x, cout, cout, 3), cout))


def unet(resolution: int = 64, base: int = 8, in_channels: int = 3, out_channels: int = 1,
         seed: int = 0) -> onnx.ModelProto:
    """U-Net: input 'input' (1, in_channels, r, r), output 'output' (1, out_channels, r, r) in (0, 1).

    Encoder levels have base, 2*base, 4*base channels and the bottleneck 8*base; the final
    1x1 conv (with bias) is followed by a Sigmoid, as for a binary segmentation mask.
    """
    if resolution < 2**DEPTH or resolution % 2**DEPTH:
        raise ValueError(f"resolution must be a positive multiple of {2**DEPTH}, not {resolution}")
    if min(base, in_channels, out_channels) < 1:
        raise ValueError(f"base, in_channels and out_channels must be at least 1, not "
                         f"{base}, {in_channels}, {out_channels}")
    b = GraphBuilder("unet", seed, "input", (CALIB_BATCH, in_channels, 64, 64))
    skips: list[tuple[str, int]] = []
    x, cin = "input", in_channels
    for level in range(DEPTH):
        c = base * 2**level
        x = _double_conv(b, x, cin, c)
        skips.append((x, c))
        x, cin = b.maxpool(x, 2, 2), c
    x = _double_conv(b, x, cin, base * 2**DEPTH)
    cin = base * 2**DEPTH
    for mode, (skip, c) in zip(UPSAMPLE_MODES, reversed(skips)):
        x = b.concat([b.upsample2x(x, mode), skip])
        x = _double_conv(b, x, cin + c, c)
        cin = c
    logits = b.conv(x, cin, out_channels, 1, bias=True)
    b.sigmoid(logits, output="output")
    return b.finish("input", [1, in_channels, resolution, resolution], "output")

"""ResNet-18 (He et al. 2016) with seeded random weights, as torchvision defines it."""

from __future__ import annotations

import onnx

from edgec.models.builder import GraphBuilder

# BN calibration batch (see builder.py): fixed, so the weights do not depend on the resolution.
CALIB_SHAPE = (4, 3, 64, 64)
STAGES = [(64, 1), (128, 2), (256, 2), (512, 2)]  # (channels, first stride) of the 4 stages


def _basic_block(b: GraphBuilder, x: str, cin: int, cout: int, stride: int) -> str:
    """conv3x3/s + BN + ReLU, conv3x3 + BN, (+ 1x1/s conv + BN shortcut), Add, ReLU."""
    y = b.relu(b.batchnorm(b.conv(x, cin, cout, 3, stride), cout))
    # Small scale on the last BN of the residual branch keeps the sum O(1) across 8 blocks.
    y = b.batchnorm(b.conv(y, cout, cout, 3), cout, gamma=(0.2, 0.5))
    shortcut = x
    if stride != 1 or cin != cout:
        shortcut = b.batchnorm(b.conv(x, cin, cout, 1, stride, pad=0), cout)
    return b.relu(b.add(y, shortcut))


def resnet18(resolution: int = 224, num_classes: int = 1000, seed: int = 0) -> onnx.ModelProto:
    """ResNet-18: input 'input' (1, 3, resolution, resolution), output 'output' (1, num_classes).

    conv 7x7/2 + BN + ReLU, MaxPool 3x3/2 pad 1, 4 stages of 2 BasicBlocks, GlobalAveragePool,
    Flatten, Gemm.
    """
    if resolution < 32 or resolution % 32:
        raise ValueError(f"resolution must be a positive multiple of 32, not {resolution}")
    b = GraphBuilder("resnet18", seed, "input", CALIB_SHAPE)
    x = b.relu(b.batchnorm(b.conv("input", 3, 64, 7, 2, pad=3), 64))
    x = b.maxpool(x, 3, 2, pad=1)
    cin = 64
    for cout, stride in STAGES:
        for i in range(2):
            x = _basic_block(b, x, cin, cout, stride if i == 0 else 1)
            cin = cout
    x = b.flatten(b.global_avg_pool(x))
    b.gemm(x, cin, num_classes, output="output")
    return b.finish("input", [1, 3, resolution, resolution], "output")

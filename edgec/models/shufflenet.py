"""ShuffleNet-like net (ShuffleNet v1, Zhang et al. 2018) with seeded random weights.

Each unit: grouped 1x1 conv + BN + ReLU, channel shuffle (Reshape -> Transpose -> Reshape, the
way PyTorch exports it), depthwise 3x3 conv + BN, grouped 1x1 conv + BN; stride-1 units add the
input, stride-2 units concatenate a 3x3/2 average pool of the input; ReLU after the join.
"""

from __future__ import annotations

import numpy as np
import onnx

from edgec.models.builder import GraphBuilder

# Calibration batch (see builder.py): fixed, so the weights do not depend on the resolution.
CALIB_SHAPE = (4, 3, 64, 64)

# Output channels of stages 2-4 for each group count (the paper's Table 1, width 1x).
STAGE_CHANNELS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960),
                  4: (272, 544, 1088), 8: (384, 768, 1536)}
STAGE_REPEATS = (4, 8, 4)
STEM_CHANNELS = 24


def _avgpool3x3s2(a: np.ndarray) -> np.ndarray:
    """Float64 AveragePool 3x3/2 pad 1 with ONNX's default count_include_pad=0."""
    n, c, h, w = a.shape
    oh, ow = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    xp = np.pad(a, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ones = np.pad(np.ones((h, w)), 1)
    total = np.zeros((n, c, oh, ow))
    count = np.zeros((oh, ow))
    for i in range(3):
        for j in range(3):
            total += xp[:, :, i:i + 2 * oh - 1:2, j:j + 2 * ow - 1:2]
            count += ones[i:i + 2 * oh - 1:2, j:j + 2 * ow - 1:2]
    return total / count


def _channel_shuffle(b: GraphBuilder, x: str, channels: int, groups: int, hw: tuple[int, int]) -> str:
    """(N, g*k, H, W) -> (N, g, k, H, W) -> (N, k, g, H, W) -> (N, k*g, H, W).

    The Reshape shapes are the model's static batch-1 shapes (as a traced export writes them);
    the calibration value, computed on the builder's own batch, goes through the same permutation.
    """
    a = b.act[x]
    n, h, w = a.shape[0], a.shape[2], a.shape[3]
    k = channels // groups
    shape5 = b.const("shuffle_shape", np.array([1, groups, k, *hw], np.int64))
    y = b.node("Reshape", [x, shape5], a.reshape(n, groups, k, h, w), "shuffle_reshape")
    t = b.node("Transpose", [y], b.act[y].transpose(0, 2, 1, 3, 4), "shuffle_transpose",
               perm=[0, 2, 1, 3, 4])
    shape4 = b.const("shuffle_shape", np.array([1, channels, *hw], np.int64))
    return b.node("Reshape", [t, shape4], b.act[t].reshape(n, channels, h, w), "shuffle_reshape")


def _unit(b: GraphBuilder, x: str, cin: int, cout: int, stride: int, groups: int,
          hw: tuple[int, int]) -> str:
    """One ShuffleNet unit; `hw` is the model's spatial size at the unit's output."""
    mid = cout // 4
    # The first pointwise conv of the network sees only the 24 stem channels: not grouped.
    g1 = 1 if cin == STEM_CHANNELS else groups
    y = b.relu(b.batchnorm(b.conv(x, cin, mid, 1, groups=g1), mid))
    if g1 > 1:
        in_hw = (hw[0] * stride, hw[1] * stride)
        y = _channel_shuffle(b, y, mid, groups, in_hw)
    y = b.batchnorm(b.conv(y, mid, mid, 3, stride, groups=mid), mid)
    branch = cout - cin if stride == 2 else cout
    # Small scale on the residual branch's last BN keeps the sum O(1) across 16 units.
    gamma = (0.5, 1.5) if stride == 2 else (0.2, 0.5)
    y = b.batchnorm(b.conv(y, mid, branch, 1, groups=groups), branch, gamma)
    if stride == 1:
        return b.relu(b.add(x, y))
    pooled = b.node("AveragePool", [x], _avgpool3x3s2(b.act[x]), "avgpool", kernel_shape=[3, 3],
                    strides=[2, 2], pads=[1, 1, 1, 1])
    return b.relu(b.concat([pooled, y], axis=1))


def shufflenet(resolution: int = 224, groups: int = 3, num_classes: int = 1000,
               seed: int = 0) -> onnx.ModelProto:
    """ShuffleNet v1 1x: input 'input' (1, 3, resolution, resolution), output 'output' (1, num_classes).

    conv 3x3/2 (24) + BN + ReLU, MaxPool 3x3/2, 3 stages of (4, 8, 4) units whose first unit has
    stride 2, GlobalAveragePool, Flatten, Gemm. `groups` is the pointwise conv group count.
    """
    if resolution < 32 or resolution % 32:
        raise ValueError(f"resolution must be a positive multiple of 32, not {resolution}")
    if groups not in STAGE_CHANNELS:
        raise ValueError(f"groups must be one of {sorted(STAGE_CHANNELS)}, not {groups}")
    b = GraphBuilder("shufflenet", seed, "input", CALIB_SHAPE)
    x = b.relu(b.batchnorm(b.conv("input", 3, STEM_CHANNELS, 3, 2), STEM_CHANNELS))
    x = b.maxpool(x, 3, 2, pad=1)
    cin, size = STEM_CHANNELS, resolution // 4
    for cout, repeats in zip(STAGE_CHANNELS[groups], STAGE_REPEATS):
        for i in range(repeats):
            stride = 2 if i == 0 else 1
            size //= stride
            x = _unit(b, x, cin, cout, stride, groups, (size, size))
            cin = cout
    x = b.flatten(b.global_avg_pool(x))
    b.gemm(x, cin, num_classes, output="output")
    return b.finish("input", [1, 3, resolution, resolution], "output")

"""PP-OCR-like text detector (DB, Liao et al. 2020, as PaddleOCR builds it) with seeded weights.

Backbone: MobileNetV3-large at scale 0.5 without squeeze-excite (PaddleOCR's det config), ReLU
and HardSwish activations; feature maps at strides 4, 8, 16 and 32. Neck (DBFPN): 1x1 convs to
`neck_channels`, a top-down path of nearest 2x Resize + Add, 3x3 convs to neck_channels / 4,
nearest Resize of every level to stride 4 and a Concat. Head (DB binarize branch): conv 3x3 + BN
+ ReLU, two ConvTranspose 2x2/2 (the second to one channel) and a Sigmoid: a probability map
with the input's resolution.
"""

from __future__ import annotations

import numpy as np
import onnx

from edgec.models.builder import GraphBuilder
from edgec.models.mobilenet_v2 import make_divisible

# Calibration batch (see builder.py): fixed, so the weights do not depend on the resolution.
CALIB_SHAPE = (2, 3, 64, 64)

# MobileNetV3-large blocks: (kernel, expansion channels, out channels, activation, stride).
MOBILENET_V3_LARGE = [
    (3, 16, 16, "relu", 1),
    (3, 64, 24, "relu", 2),
    (3, 72, 24, "relu", 1),
    (5, 72, 40, "relu", 2),
    (5, 120, 40, "relu", 1),
    (5, 120, 40, "relu", 1),
    (3, 240, 80, "hardswish", 2),
    (3, 200, 80, "hardswish", 1),
    (3, 184, 80, "hardswish", 1),
    (3, 184, 80, "hardswish", 1),
    (3, 480, 112, "hardswish", 1),
    (3, 672, 112, "hardswish", 1),
    (5, 672, 160, "hardswish", 2),
    (5, 960, 160, "hardswish", 1),
    (5, 960, 160, "hardswish", 1),
]
LAST_CONV = 960  # PaddleOCR's cls_ch_squeeze: final 1x1 conv of the backbone, before scaling


def _hardswish(b: GraphBuilder, x: str) -> str:
    a = b.act[x]
    return b.node("HardSwish", [x], a * np.clip(a + 3, 0, 6) / 6)


def _conv_bn_act(b: GraphBuilder, x: str, cin: int, cout: int, k: int, stride: int = 1,
                 groups: int = 1, act: str | None = None,
                 gamma: tuple[float, float] = (0.5, 1.5)) -> str:
    y = b.batchnorm(b.conv(x, cin, cout, k, stride, groups=groups), cout, gamma)
    if act == "relu":
        return b.relu(y)
    if act == "hardswish":
        return _hardswish(b, y)
    return y


def _upsample_nearest(b: GraphBuilder, x: str, factor: int) -> str:
    """Resize by an integer factor as PyTorch/Paddle export nearest upsampling."""
    a = b.act[x]
    scales = b.const("resize_scales", np.array([1, 1, factor, factor], np.float32))
    return b.node("Resize", [x, "", scales], a.repeat(factor, axis=2).repeat(factor, axis=3),
                  "resize", mode="nearest", coordinate_transformation_mode="asymmetric",
                  nearest_mode="floor")


def _conv_transpose2x2(b: GraphBuilder, x: str, cin: int, cout: int) -> str:
    """ConvTranspose kernel 2, stride 2, with bias: each input pixel paints a 2x2 output patch."""
    w = (b.rng.standard_normal((cin, cout, 2, 2)) * np.sqrt(2.0 / cin)).astype(np.float32)
    bias = b.rng.uniform(-0.1, 0.1, cout).astype(np.float32)
    a = b.act[x]
    n, _, h, wd = a.shape
    y = np.einsum("nchw,coab->nohawb", a, w.astype(np.float64)).reshape(n, cout, 2 * h, 2 * wd)
    y = y + bias.reshape(1, -1, 1, 1)
    ins = [x, b.const("deconv_w", w), b.const("deconv_b", bias)]
    return b.node("ConvTranspose", ins, y, "deconv", kernel_shape=[2, 2], strides=[2, 2],
                  pads=[0, 0, 0, 0], group=1, dilations=[1, 1])


def _backbone(b: GraphBuilder, scale: float) -> tuple[list[str], list[int]]:
    """MobileNetV3 feature maps at strides 4, 8, 16, 32 and their channel counts."""
    cin = make_divisible(16 * scale)
    x = _conv_bn_act(b, "input", 3, cin, 3, 2, act="hardswish")
    feats: list[str] = []
    chans: list[int] = []
    for i, (k, exp, c, act, s) in enumerate(MOBILENET_V3_LARGE):
        if s == 2 and i > 2:  # a new stage starts: the previous one's output is a feature map
            feats.append(x)
            chans.append(cin)
        mid, cout = make_divisible(exp * scale), make_divisible(c * scale)
        y = _conv_bn_act(b, x, cin, mid, 1, act=act)
        y = _conv_bn_act(b, y, mid, mid, k, s, groups=mid, act=act)
        if s == 1 and cin == cout:
            # Small projection scale on residual blocks keeps the running sum O(1) with depth.
            x = b.add(x, _conv_bn_act(b, y, mid, cout, 1, gamma=(0.2, 0.5)))
        else:
            x = _conv_bn_act(b, y, mid, cout, 1)
        cin = cout
    last = make_divisible(LAST_CONV * scale)
    feats.append(_conv_bn_act(b, x, cin, last, 1, act="hardswish"))
    chans.append(last)
    return feats, chans


def ppocr_det(resolution: int = 640, scale: float = 0.5, neck_channels: int = 96,
              seed: int = 0) -> onnx.ModelProto:
    """PP-OCR-like DB detector: input 'input' (1, 3, R, R), output 'output' (1, 1, R, R).

    `scale` is the MobileNetV3 width multiplier, `neck_channels` the DBFPN width (a multiple
    of 4; PaddleOCR uses 96 for its mobile models and 256 for the server ones).
    """
    if resolution < 32 or resolution % 32:
        raise ValueError(f"resolution must be a positive multiple of 32, not {resolution}")
    if scale <= 0:
        raise ValueError(f"scale must be positive, not {scale}")
    if neck_channels < 4 or neck_channels % 4:
        raise ValueError(f"neck_channels must be a positive multiple of 4, not {neck_channels}")
    b = GraphBuilder("ppocr_det", seed, "input", CALIB_SHAPE)
    feats, chans = _backbone(b, scale)
    # Neck: lateral 1x1 convs (no BN, no bias, as DBFPN), then the top-down path.
    lat = [b.conv(f, c, neck_channels, 1) for f, c in zip(feats, chans)]
    td = [lat[3]]
    for level in (2, 1, 0):
        td.insert(0, b.add(lat[level], _upsample_nearest(b, td[0], 2)))
    quarter = neck_channels // 4
    outs = [b.conv(t, neck_channels, quarter, 3) for t in td]
    ups = [outs[0]] + [_upsample_nearest(b, o, 2 ** lvl) for lvl, o in enumerate(outs) if lvl]
    fuse = b.concat(ups[::-1], axis=1)  # DBFPN concatenates p5, p4, p3, p2
    # Head: the binarize branch of DBHead.
    y = _conv_bn_act(b, fuse, neck_channels, quarter, 3, act="relu")
    y = b.relu(b.batchnorm(_conv_transpose2x2(b, y, quarter, quarter), quarter))
    y = _conv_transpose2x2(b, y, quarter, 1)
    b.sigmoid(y, output="output")
    return b.finish("input", [1, 3, resolution, resolution], "output")

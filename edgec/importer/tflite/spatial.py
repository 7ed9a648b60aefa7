"""TFLite's spatial ops (NHWC in the file) as NCHW ONNX ops: CONV_2D, DEPTHWISE_CONV_2D,
TRANSPOSE_CONV (and MediaPipe's Convolution2DTransposeBias), MAX/AVERAGE_POOL_2D, RESIZE_*,
DEPTH_TO_SPACE, SPACE_TO_DEPTH. Weights are transposed at build time; TF's SAME padding becomes
explicit pads (the extra pixel at the end, as TF puts it)."""

from __future__ import annotations

import numpy as np

from edgec.errors import ModelError
from edgec.importer.tflite.convert import Builder
from edgec.importer.tflite.reader import Op, custom_ints

SAME, VALID = 0, 1
ACTIVATIONS = {0: None, 1: "Relu", 2: (-1.0, 1.0), 3: (0.0, 6.0), 4: "Tanh"}


def activation(b: Builder, name: str, fused: object, what: str) -> str:
    """`name` through the op's fused activation (NONE, RELU, RELU_N1_TO_1, RELU6, TANH)."""
    act = ACTIVATIONS.get(int(fused or 0), "bad")
    if act == "bad":
        raise ModelError(f"{what}: fused activation {fused} is not supported")
    if act is None:
        return name
    if isinstance(act, tuple):
        lo, hi = (b.add_const(np.array(v, np.float32), "clip") for v in act)
        return b.node("Clip", [name, lo, hi])[0]
    return b.node(act, [name])[0]


def same_pads(size: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def _pads(b: Builder, op: Op, x: int, kh: int, kw: int, dh: int = 1, dw: int = 1) -> list[int]:
    o = op.options
    if int(o.get("Padding", VALID)) == VALID:
        return [0, 0, 0, 0]
    _, h, w, _ = b.tensor(x).shape
    (pt, pb), (pl, pr) = same_pads(h, kh, int(o["StrideH"]), dh), same_pads(w, kw, int(o["StrideW"]), dw)
    return [pt, pl, pb, pr]


def _shape(b: Builder, op: Op, t: int) -> tuple[int, ...]:
    if b.const_value(t) is None:
        raise ModelError(f"{op.name}: the weights ({b.tensor(t).name!r}) must be constant")
    return b.tensor(t).shape


def _bias(b: Builder, op: Op, k: int) -> list[str]:
    return [b.get(op.inputs[k])] if len(op.inputs) > k and op.inputs[k] >= 0 else []


def conv_2d(b: Builder, op: Op) -> None:
    x, wt = op.inputs[:2]
    w = _shape(b, op, wt)  # [O, H, W, I]
    o = op.options
    dh, dw = int(o.get("DilationHFactor", 1) or 1), int(o.get("DilationWFactor", 1) or 1)
    groups = b.tensor(x).shape[3] // w[3]
    y = b.node("Conv", [b.get(x, "nchw"), b.weight(wt, [0, 3, 1, 2]), *_bias(b, op, 2)],
               strides=[int(o["StrideH"]), int(o["StrideW"])], dilations=[dh, dw], group=groups,
               pads=_pads(b, op, x, w[1], w[2], dh, dw))[0]
    b.set(op.outputs[0], activation(b, y, o.get("FusedActivationFunction"), op.name), "nchw")


def depthwise_conv_2d(b: Builder, op: Op) -> None:
    x, wt = op.inputs[:2]
    w = _shape(b, op, wt)  # [1, H, W, C * M]
    o = op.options
    dh, dw = int(o.get("DilationHFactor", 1) or 1), int(o.get("DilationWFactor", 1) or 1)
    c = b.tensor(x).shape[3]
    y = b.node("Conv", [b.get(x, "nchw"), b.weight(wt, [3, 0, 1, 2]), *_bias(b, op, 2)],
               strides=[int(o["StrideH"]), int(o["StrideW"])], dilations=[dh, dw], group=c,
               pads=_pads(b, op, x, w[1], w[2], dh, dw))[0]
    b.set(op.outputs[0], activation(b, y, o.get("FusedActivationFunction"), op.name), "nchw")


def _transpose_conv(b: Builder, op: Op, x: int, wt: int, bias: list[str], padding: int, sh: int, sw: int,
                    fused: object) -> None:
    w = _shape(b, op, wt)  # [O, H, W, I]
    _, ih, iw, _ = b.tensor(x).shape
    _, oh, ow, _ = b.tensor(op.outputs[0]).shape
    pads = []
    for size, out, k, s in ((ih, oh, w[1], sh), (iw, ow, w[2], sw)):
        total = (size - 1) * s + k - out
        if total < 0:
            raise ModelError(f"{op.name}: output size {out} is larger than the transposed conv gives")
        pads.append((total // 2, total - total // 2) if padding == SAME else (0, total))
    y = b.node("ConvTranspose", [b.get(x, "nchw"), b.weight(wt, [3, 0, 1, 2]), *bias],
               strides=[sh, sw], pads=[pads[0][0], pads[1][0], pads[0][1], pads[1][1]])[0]
    b.set(op.outputs[0], activation(b, y, fused, op.name), "nchw")


def transpose_conv(b: Builder, op: Op) -> None:
    o = op.options
    _transpose_conv(b, op, op.inputs[2], op.inputs[1], _bias(b, op, 3), int(o.get("Padding", SAME)),
                    int(o["StrideH"]), int(o["StrideW"]), o.get("FusedActivationFunction"))


def conv2d_transpose_bias(b: Builder, op: Op) -> None:
    """MediaPipe's custom op: inputs (x, weights [O, H, W, I], bias); its custom options are a
    TfLiteTransposeConvParams struct (padding, stride_width, stride_height)."""
    padding, sw, sh = custom_ints(op.custom_options, 3)
    _transpose_conv(b, op, op.inputs[0], op.inputs[1], _bias(b, op, 2), 0 if padding == 1 else 1, sh, sw, 0)


def _pool(onnx_op: str):  # noqa: ANN202
    def convert(b: Builder, op: Op) -> None:
        x = op.inputs[0]
        o = op.options
        kh, kw = int(o["FilterHeight"]), int(o["FilterWidth"])
        extra = {"count_include_pad": 0} if onnx_op == "AveragePool" else {}
        y = b.node(onnx_op, [b.get(x, "nchw")], kernel_shape=[kh, kw], strides=[int(o["StrideH"]), int(o["StrideW"])],
                   pads=_pads(b, op, x, kh, kw), **extra)[0]
        b.set(op.outputs[0], activation(b, y, o.get("FusedActivationFunction"), op.name), "nchw")
    return convert


def _resize(mode: str):  # noqa: ANN202
    def convert(b: Builder, op: Op) -> None:
        o = op.options
        out = b.tensor(op.outputs[0]).shape
        if o.get("AlignCorners"):
            coord, nearest = "align_corners", "round_prefer_ceil"
        elif o.get("HalfPixelCenters"):
            coord, nearest = ("half_pixel", "floor") if mode == "linear" else ("tf_half_pixel_for_nn", "floor")
        else:
            coord, nearest = "asymmetric", "floor"
        sizes = b.add_const(np.array([out[0], out[3], out[1], out[2]], np.int64), "sizes")
        extra = {"nearest_mode": nearest} if mode == "nearest" else {}
        y = b.node("Resize", [b.get(op.inputs[0], "nchw"), "", "", sizes], mode=mode,
                   coordinate_transformation_mode=coord, **extra)[0]
        b.set(op.outputs[0], y, "nchw")
    return convert


def _space(onnx_op: str):  # noqa: ANN202
    def convert(b: Builder, op: Op) -> None:
        extra = {"mode": "DCR"} if onnx_op == "DepthToSpace" else {}
        y = b.node(onnx_op, [b.get(op.inputs[0], "nchw")], blocksize=int(op.options["BlockSize"]), **extra)[0]
        b.set(op.outputs[0], y, "nchw")
    return convert


SPATIAL = {
    "CONV_2D": conv_2d,
    "DEPTHWISE_CONV_2D": depthwise_conv_2d,
    "TRANSPOSE_CONV": transpose_conv,
    "CUSTOM:Convolution2DTransposeBias": conv2d_transpose_bias,
    "MAX_POOL_2D": _pool("MaxPool"),
    "AVERAGE_POOL_2D": _pool("AveragePool"),
    "RESIZE_BILINEAR": _resize("linear"),
    "RESIZE_NEAREST_NEIGHBOR": _resize("nearest"),
    "DEPTH_TO_SPACE": _space("DepthToSpace"),
    "SPACE_TO_DEPTH": _space("SpaceToDepth"),
}

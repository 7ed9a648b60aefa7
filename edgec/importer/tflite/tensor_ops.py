"""TFLite's elementwise, reduction, shape and quantization ops as ONNX ops. Elementwise ops,
pads, concatenations and reductions run in the layout their inputs already have (convert.py);
shape ops work on the tensor as TFLite has it (NHWC)."""

from __future__ import annotations

import numpy as np

from edgec.errors import ModelError
from edgec.importer.tflite.convert import AXIS_TO_NCHW, TO_NCHW, Builder
from edgec.importer.tflite.densify import densify
from edgec.importer.tflite.reader import Op
from edgec.importer.tflite.spatial import activation

FOLD = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
        "Max": np.maximum, "Min": np.minimum}


def _const(b: Builder, op: Op, k: int) -> np.ndarray:
    v = b.const_value(op.inputs[k]) if len(op.inputs) > k and op.inputs[k] >= 0 else None
    if v is None:
        raise ModelError(f"{op.name}: input {k} must be constant")
    return v


def _nchw_operand(b: Builder, t: int) -> str | None:
    """t as an operand of an NCHW elementwise op: 4-D tensors transposed, a constant of lower
    rank (NHWC broadcasting: aligned to the channel end) expanded and transposed; None when t
    cannot be had that way (a computed tensor of rank 1-3)."""
    if b.rank(t) == 4:
        return b.get(t, "nchw")
    data = b.const_value(t)
    if data is None or b.quantized(t):
        return None if b.rank(t) or data is not None else b.get(t)
    return b.add_const(data.reshape((1,) * (4 - data.ndim) + data.shape).transpose(TO_NCHW), "bc")


def _layout(b: Builder, op: Op, ins: list[int]) -> str:
    computed = [t for t in ins if b.const_value(t) is None]
    if b.rank(op.outputs[0]) == 4 and any(b.has(t, "nchw") for t in computed):
        return "nchw"
    return "nhwc"


def _elementwise(onnx_op: str, n_in: int = 2):  # noqa: ANN202
    def convert(b: Builder, op: Op) -> None:
        ins = op.inputs[:n_in]
        if onnx_op in FOLD and all(b.const_value(t) is not None and not b.quantized(t) for t in ins):
            b.consts[op.outputs[0]] = FOLD[onnx_op](*(b.const_value(t) for t in ins)).astype(
                b.tensor(op.outputs[0]).dtype)
            return
        layout = _layout(b, op, ins)
        names = [_nchw_operand(b, t) for t in ins] if layout == "nchw" else []
        if layout == "nhwc" or None in names:
            layout, names = "nhwc", [b.get(t) for t in ins]
        y = b.node(onnx_op, names)[0]
        b.set(op.outputs[0], activation(b, y, op.options.get("FusedActivationFunction"), op.name), layout)
    return convert


def _unary(onnx_op: str, **attrs: object):  # noqa: ANN202
    def convert(b: Builder, op: Op) -> None:
        x = op.inputs[0]
        layout = b.preferred(x)
        extra = {"alpha": float(op.options["Alpha"])} if onnx_op == "LeakyRelu" else attrs
        b.set(op.outputs[0], b.node(onnx_op, [b.get(x, layout)], **extra)[0], layout)
    return convert


def relu6(b: Builder, op: Op) -> None:
    x = op.inputs[0]
    layout = b.preferred(x)
    b.set(op.outputs[0], activation(b, b.get(x, layout), 3, op.name), layout)


def prelu(b: Builder, op: Op) -> None:
    x, alpha = op.inputs[:2]
    layout = b.preferred(x)
    slope = _nchw_operand(b, alpha) if layout == "nchw" else b.get(alpha)
    if slope is None:
        layout, slope = "nhwc", b.get(alpha)
    b.set(op.outputs[0], b.node("PRelu", [b.get(x, layout), slope])[0], layout)


def pad(b: Builder, op: Op) -> None:
    x = op.inputs[0]
    p = np.asarray(_const(b, op, 1), np.int64).reshape(-1, 2)
    layout = b.preferred(x)
    if layout == "nchw":
        p = p[TO_NCHW]
    value = [b.get(op.inputs[2])] if len(op.inputs) > 2 and op.inputs[2] >= 0 else []
    mode = {"MIRROR_PAD": "reflect" if not op.options.get("Mode") else "edge"}.get(op.name, "constant")
    if op.name == "MIRROR_PAD" and op.options.get("Mode"):
        raise ModelError("MIRROR_PAD in SYMMETRIC mode is not supported")
    y = b.node("Pad", [b.get(x, layout), b.add_const(np.concatenate([p[:, 0], p[:, 1]]), "pads"), *value],
               mode=mode)[0]
    b.set(op.outputs[0], y, layout)


def _reduce(onnx_op: str):  # noqa: ANN202
    def convert(b: Builder, op: Op) -> None:
        x = op.inputs[0]
        rank = b.rank(x)
        axes = sorted({int(a) % rank for a in np.asarray(_const(b, op, 1)).reshape(-1)})
        keep = bool(op.options.get("KeepDims"))
        layout = b.preferred(x)
        # without keepdims an NCHW reduction leaves the other axes in NCHW order, which is the
        # NHWC order only if C is reduced or both H and W are
        if layout == "nchw" and not keep and not (3 in axes or {1, 2} <= set(axes)):
            layout = "nhwc"
        mapped = sorted(AXIS_TO_NCHW[a] for a in axes) if layout == "nchw" else axes
        y = b.node(onnx_op, [b.get(x, layout), b.add_const(np.array(mapped, np.int64), "axes")],
                   keepdims=int(keep))[0]
        b.set(op.outputs[0], y, layout if keep else "nhwc")
    return convert


def concatenation(b: Builder, op: Op) -> None:
    rank = b.rank(op.outputs[0])
    axis = int(op.options.get("Axis", 0)) % rank
    layout = _layout(b, op, op.inputs)
    y = b.node("Concat", [b.get(t, layout) for t in op.inputs],
               axis=AXIS_TO_NCHW[axis] if layout == "nchw" else axis)[0]
    b.set(op.outputs[0], activation(b, y, op.options.get("FusedActivationFunction"), op.name), layout)


def reshape(b: Builder, op: Op) -> None:
    """RESHAPE, SQUEEZE, EXPAND_DIMS: to the output tensor's (static) shape."""
    x = op.inputs[0]
    if b.const_value(x) is not None:
        b.consts[op.outputs[0]] = b.const_value(x).reshape(b.tensor(op.outputs[0]).shape)
        return
    shape = b.add_const(np.array(b.tensor(op.outputs[0]).shape, np.int64), "shape")
    b.set(op.outputs[0], b.node("Reshape", [b.get(x), shape])[0])


def softmax(b: Builder, op: Op) -> None:
    x = op.inputs[0]
    layout = b.preferred(x)
    name = b.get(x, layout)
    beta = float(op.options.get("Beta", 1.0) or 1.0)
    if beta != 1.0:
        name = b.node("Mul", [name, b.add_const(np.array(beta, np.float32), "beta")])[0]
    b.set(op.outputs[0], b.node("Softmax", [name], axis=1 if layout == "nchw" else -1)[0], layout)


def fully_connected(b: Builder, op: Op) -> None:
    x, wt = op.inputs[:2]
    k = b.tensor(wt).shape[1]
    flat = b.node("Reshape", [b.get(x), b.add_const(np.array([-1, k], np.int64), "shape")])[0]
    bias = [b.get(op.inputs[2])] if len(op.inputs) > 2 and op.inputs[2] >= 0 else []
    y = b.node("Gemm", [flat, b.weight(wt, None), *bias], transB=1)[0]
    y = b.node("Reshape", [y, b.add_const(np.array(b.tensor(op.outputs[0]).shape, np.int64), "shape")])[0]
    b.set(op.outputs[0], activation(b, y, op.options.get("FusedActivationFunction"), op.name))


def strided_slice(b: Builder, op: Op) -> None:
    o = op.options
    if int(o.get("EllipsisMask", 0) or 0) or int(o.get("NewAxisMask", 0) or 0):
        raise ModelError("STRIDED_SLICE with an ellipsis or new-axis mask is not supported")
    shape = b.tensor(op.inputs[0]).shape
    begin, end, strides = (np.asarray(_const(b, op, k), np.int64).reshape(-1) for k in (1, 2, 3))
    starts, ends = [], []
    for a in range(len(begin)):
        s, e = int(begin[a]), int(end[a])
        if o.get("Offset"):
            e = s + e
        if int(o.get("BeginMask", 0)) >> a & 1:
            s = 0 if strides[a] > 0 else shape[a] - 1
        if int(o.get("EndMask", 0)) >> a & 1:
            e = shape[a] if strides[a] > 0 else -shape[a] - 1
        if int(o.get("ShrinkAxisMask", 0)) >> a & 1:
            e = s + 1 if s != -1 else shape[a]
        starts.append(s)
        ends.append(e)
    y = b.node("Slice", [b.get(op.inputs[0]), *(b.add_const(np.array(v, np.int64), "s") for v in
                                                (starts, ends, list(range(len(begin))), strides))])[0]
    shape_out = b.add_const(np.array(b.tensor(op.outputs[0]).shape, np.int64), "shape")
    b.set(op.outputs[0], b.node("Reshape", [y, shape_out])[0])


def slice_(b: Builder, op: Op) -> None:
    begin, size = (np.asarray(_const(b, op, k), np.int64).reshape(-1) for k in (1, 2))
    shape = b.tensor(op.inputs[0]).shape
    ends = [shape[a] if size[a] < 0 else begin[a] + size[a] for a in range(len(begin))]
    y = b.node("Slice", [b.get(op.inputs[0]), b.add_const(begin, "s"), b.add_const(np.array(ends, np.int64), "e")])[0]
    b.set(op.outputs[0], y)


def transpose(b: Builder, op: Op) -> None:
    perm = [int(v) for v in np.asarray(_const(b, op, 1)).reshape(-1)]
    b.set(op.outputs[0], b.node("Transpose", [b.get(op.inputs[0])], perm=perm)[0])


def gather(b: Builder, op: Op) -> None:
    axis = int(op.options.get("Axis", 0))
    y = b.node("Gather", [b.get(op.inputs[0]), b.get(op.inputs[1])], axis=axis)[0]
    b.set(op.outputs[0], y)


def _split(b: Builder, op: Op, x: int, axis: int, sizes: list[int]) -> None:
    axis %= b.rank(x)
    outs = b.node("Split", [b.get(x), b.add_const(np.array(sizes, np.int64), "split")], n_out=len(op.outputs),
                  axis=axis)
    for t, name in zip(op.outputs, outs):
        b.set(t, name)


def split(b: Builder, op: Op) -> None:
    axis, x = int(np.asarray(_const(b, op, 0)).reshape(-1)[0]), op.inputs[1]
    _split(b, op, x, axis, [b.tensor(t).shape[axis % b.rank(x)] for t in op.outputs])


def split_v(b: Builder, op: Op) -> None:
    x, axis = op.inputs[0], int(np.asarray(_const(b, op, 2)).reshape(-1)[0])
    _split(b, op, x, axis, [b.tensor(t).shape[axis % b.rank(x)] for t in op.outputs])


def _quant_params(b: Builder, t: int) -> tuple[np.ndarray, np.ndarray, int]:  # constants only
    q = b.tensor(t).quant
    if q is None:
        raise ModelError(f"tensor {b.tensor(t).name!r} has no quantization parameters")
    return q.scale, q.zero_point, q.axis


def dequantize(b: Builder, op: Op) -> None:
    x = op.inputs[0]
    data = b.const_value(x)
    if data is not None:  # float16 or int8 weights: dequantized at build time
        if b.tensor(x).quant is not None and data.dtype.kind in "iu":
            scale, zp, axis = _quant_params(b, x)
            shape = [1] * data.ndim
            if scale.size > 1:
                shape[axis] = scale.size
            data = (data.astype(np.float32) - zp.reshape(shape)) * scale.reshape(shape)
        b.consts[op.outputs[0]] = np.asarray(data, np.float32)
        return
    if b.tensor(x).dtype == np.float16:
        b.set(op.outputs[0], b.node("Cast", [b.get(x)], to=1)[0])
        return
    layout = b.preferred(x)  # a quantized tensor is carried dequantized already (convert.py)
    b.set(op.outputs[0], b.get(x, layout), layout)


def quantize(b: Builder, op: Op) -> None:
    """QUANTIZE (float -> int8, or int8 -> int8 with other parameters): Builder.set quantizes."""
    x = op.inputs[0]
    layout = b.preferred(x)
    b.set(op.outputs[0], b.get(x, layout), layout)


def densify_op(b: Builder, op: Op) -> None:
    t = b.tensor(op.inputs[0])
    if t.data is None or t.sparsity is None:
        raise ModelError("DENSIFY: the input must be a sparse constant")
    b.consts[op.outputs[0]] = densify(t.data, t.shape, t.sparsity)


TENSOR_OPS = {
    "ADD": _elementwise("Add"), "SUB": _elementwise("Sub"), "MUL": _elementwise("Mul"), "DIV": _elementwise("Div"),
    "MAXIMUM": _elementwise("Max"), "MINIMUM": _elementwise("Min"), "POW": _elementwise("Pow"),
    "RELU": _unary("Relu"), "RELU6": relu6, "LOGISTIC": _unary("Sigmoid"), "TANH": _unary("Tanh"),
    "HARD_SWISH": _unary("HardSwish"), "LEAKY_RELU": _unary("LeakyRelu"), "ABS": _unary("Abs"),
    "EXP": _unary("Exp"), "SQRT": _unary("Sqrt"), "NEG": _unary("Neg"), "ELU": _unary("Elu"),
    "PRELU": prelu, "PAD": pad, "PADV2": pad, "MIRROR_PAD": pad,
    "MEAN": _reduce("ReduceMean"), "SUM": _reduce("ReduceSum"), "REDUCE_MAX": _reduce("ReduceMax"),
    "CONCATENATION": concatenation, "RESHAPE": reshape, "SQUEEZE": reshape, "EXPAND_DIMS": reshape,
    "SOFTMAX": softmax, "FULLY_CONNECTED": fully_connected, "STRIDED_SLICE": strided_slice, "SLICE": slice_,
    "TRANSPOSE": transpose, "GATHER": gather, "SPLIT": split, "SPLIT_V": split_v,
    "DEQUANTIZE": dequantize, "QUANTIZE": quantize, "DENSIFY": densify_op,
}

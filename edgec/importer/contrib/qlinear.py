"""onnxruntime's QOperator-format ops (what `quantize_static(..., QuantFormat.QOperator)`
writes besides the standard QLinearConv/QLinearMatMul) as DequantizeLinear -> float op ->
QuantizeLinear. onnxruntime's kernels compute these in float on dequantized values (QLinearAdd,
QLinearMul, QLinearConcat) or through 256-entry tables built the same way (QLinearSigmoid,
QLinearLeakyRelu, QLinearSoftmax), so the QDQ form gives its results up to float rounding at
a .5 tie. QGemm becomes the QDQ Gemm that edgec's int8 passes compile to an integer kernel.

A missing output zero point means uint8 (as in QuantizeLinear).
"""

from __future__ import annotations

from edgec.importer.contrib.rewrite import Rewrite, expands


def _dq(rw: Rewrite, x: str, scale: str, zp: str, axis: int | None = None) -> str:
    attrs = {"axis": axis} if axis is not None else {}
    return rw.op("DequantizeLinear", [x, scale, zp] if zp else [x, scale], **attrs)


def _q(rw: Rewrite, x: str, scale: str, zp: str, out: str) -> str:
    return rw.op("QuantizeLinear", [x, scale, zp] if zp else [x, scale], [out])


def _need_opset(rw: Rewrite) -> None:
    if rw.opset < 10:
        raise rw.fail(f"needs ONNX opset 10 or later (QuantizeLinear), the model has {rw.opset}")


@expands("QLinearAdd", "QLinearMul", required=(0, 1, 3, 4, 6))
def qlinear_binary(rw: Rewrite) -> None:
    _need_opset(rw)
    a = _dq(rw, rw.input(0), rw.input(1), rw.input(2))
    b = _dq(rw, rw.input(3), rw.input(4), rw.input(5))
    y = rw.op(rw.node.op_type[len("QLinear"):], [a, b])
    _q(rw, y, rw.input(6), rw.input(7), rw.output(0))


@expands("QLinearSigmoid", "QLinearLeakyRelu", required=(0, 1, 3))
def qlinear_unary(rw: Rewrite) -> None:
    _need_opset(rw)
    x = _dq(rw, rw.input(0), rw.input(1), rw.input(2))
    if rw.node.op_type == "QLinearSigmoid":
        y = rw.op("Sigmoid", [x])
    else:
        y = rw.op("LeakyRelu", [x], alpha=float(rw.attrs.get("alpha", 0.01)))
    _q(rw, y, rw.input(3), rw.input(4), rw.output(0))


@expands("QLinearSoftmax", required=(0, 1, 3))
def qlinear_softmax(rw: Rewrite) -> None:
    """`opset` (an attribute) selects Softmax's semantics: before 13 the input is flattened to
    2-D at `axis`; from 13 on it is one axis. Both agree for the last axis, the case exporters
    write; other axes are refused rather than guessed."""
    _need_opset(rw)
    axis = int(rw.attrs.get("axis", -1))
    if axis != -1:
        raise rw.fail(f"QLinearSoftmax over axis {axis} is not supported (only the last axis, -1)")
    x = _dq(rw, rw.input(0), rw.input(1), rw.input(2))
    y = rw.op("Softmax", [x], axis=-1)
    _q(rw, y, rw.input(3), rw.input(4), rw.output(0))


@expands("QLinearConcat", required=(0, 1, 2))
def qlinear_concat(rw: Rewrite) -> None:
    _need_opset(rw)
    ins = list(rw.node.input[2:])
    if not ins or len(ins) % 3:
        raise rw.fail("expected (tensor, scale, zero point) triples after the output's scale and zero point")
    parts = [_dq(rw, ins[k], ins[k + 1], ins[k + 2]) for k in range(0, len(ins), 3)]
    y = rw.op("Concat", parts, axis=int(rw.attrs.get("axis", 0)))
    _q(rw, y, rw.input(0), rw.input(1), rw.output(0))


def _channels_first(rw: Rewrite, x: str, rank: int | None) -> str:
    if rank is None:
        raise rw.fail("channels_last needs the input's rank, which is unknown before inference")
    return rw.op("Transpose", [x], perm=[0, rank - 1, *range(1, rank - 1)])


@expands("QLinearGlobalAveragePool", "QLinearAveragePool", required=(0, 1, 3))
def qlinear_pool(rw: Rewrite) -> None:
    _need_opset(rw)
    x = _dq(rw, rw.input(0), rw.input(1), rw.input(2))
    last = int(rw.attrs.get("channels_last", 0))
    rank = None
    if last:
        kernel = rw.attrs.get("kernel_shape")
        rank = len(kernel) + 2 if kernel else None
        if rank is None:
            raise rw.fail("channels_last=1 is supported for QLinearAveragePool only (its kernel_shape gives the rank)")
        x = _channels_first(rw, x, rank)
    if rw.node.op_type == "QLinearGlobalAveragePool":
        y = rw.op("GlobalAveragePool", [x])
    else:
        keep = ("auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides")
        y = rw.op("AveragePool", [x], **{k: v.decode() if isinstance(v, bytes) else v
                                         for k, v in rw.attrs.items() if k in keep})
    if last:
        assert rank is not None
        y = rw.op("Transpose", [y], perm=[0, *range(2, rank), 1])
    _q(rw, y, rw.input(3), rw.input(4), rw.output(0))


@expands("QGemm", required=(0, 1, 3, 4))
def qgemm(rw: Rewrite) -> None:
    """Y = alpha * A'B' + C' with A' = (A - a_zp) * a_scale, B' likewise (b_scale per tensor or
    per output column), C int32 at scale alpha * a_scale * b_scale; quantized to (y_scale,
    y_zero_point), or float when y_scale is absent."""
    _need_opset(rw)
    alpha = float(rw.attrs.get("alpha", 1.0))
    trans_a, trans_b = int(rw.attrs.get("transA", 0)), int(rw.attrs.get("transB", 0))
    a = _dq(rw, rw.input(0), rw.input(1), rw.input(2))
    b_axis = 0 if trans_b else 1  # the output-column axis of B, for a per-column scale
    b = _dq(rw, rw.input(3), rw.input(4), rw.input(5), axis=b_axis)
    ins = [a, b]
    if rw.input(6):
        scale = rw.op("Mul", [rw.input(1), rw.input(4)])
        if alpha != 1.0:
            scale = rw.op("Mul", [scale, rw.const(alpha)])
        ins.append(_dq(rw, rw.input(6), scale, "", axis=0 if rw.opset >= 13 else None))
    if rw.input(7):
        y = rw.op("Gemm", ins, alpha=alpha, transA=trans_a, transB=trans_b)
        _q(rw, y, rw.input(7), rw.input(8), rw.output(0))
    else:
        rw.op("Gemm", ins, [rw.output(0)], alpha=alpha, transA=trans_a, transB=trans_b)

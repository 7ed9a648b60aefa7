"""Quantization ops -> IR: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearConv,
ConvInteger, QLinearMatMul, MatMulInteger.

IR forms (scale / zero point inputs may be constants or run-time values; "" = absent):
- `QuantizeLinear(x, scale, zp)` / `DequantizeLinear(x, scale, zp)` with `axis` (None when the
  scale is one value), and `block_size` for blocked quantization (a scale per block of that
  many elements along `axis`). A DequantizeLinear of constants (weights, biases) is folded here, exactly
  as onnxruntime computes it, and the constant keeps its integer form in `Value.quant` so the
  qdq pass (edgec/optimize/qdq.py) can build integer kernels from it.
- `QConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, bias)` with Conv's 2-D attributes
  and `requant` (False: ConvInteger, int32 output).
- `QMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp, bias)` likewise.
"""

from __future__ import annotations

import numpy as np
import onnx

from edgec.errors import ModelError
from edgec.importer.context import ConvertContext
from edgec.importer.converters.conv import check_bias, conv_attrs
from edgec.importer.registry import converter
from edgec.importer.validate import show, where

QUANT_DTYPES = ("uint8", "int8", "uint16", "int16")


def _dtype(cx: ConvertContext, name: str) -> str:
    return np.dtype(cx.value(name).dtype).name


def _axis(cx: ConvertContext, node: onnx.NodeProto, x: str, scale: str) -> int | None:
    """The normalized quantization axis, or None for a per-tensor scale."""
    at = cx.attrs(node)
    sshape = cx.shape(scale)
    if len(sshape) > 1:
        raise ModelError(f"{where(node)}: a scale of rank {len(sshape)} (blocked quantization) "
                         "is not supported")
    if int(np.prod(sshape, dtype=np.int64)) == 1:
        # per-tensor (a scalar or one value): `axis` is ignored, as the spec says and
        # onnxruntime does (quantize_static writes axis=1 on the 1-D bias of an unfolded BN)
        return None
    rank = len(cx.shape(x))
    axis = int(at.get("axis", 1))
    if not -rank <= axis < rank:
        raise ModelError(f"{where(node)}: axis {axis} is out of range for rank {rank}")
    axis %= rank
    if sshape and sshape[0] != cx.shape(x)[axis]:
        if sshape[0] == 1:
            return None
        raise ModelError(f"{where(node)}: scale has {sshape[0]} values but axis {axis} has "
                         f"{cx.shape(x)[axis]}")
    return axis


def _blocked(cx: ConvertContext, node: onnx.NodeProto, x: str, scale: str, zp: str) -> tuple[int, int] | None:
    """Blocked quantization (opset 21 `block_size`): the scale (and zero point) hold one value
    per `block_size` consecutive elements along `axis`: (axis, block_size), None when not
    blocked."""
    at = cx.attrs(node)
    bs = int(at.get("block_size", 0) or 0)
    if not bs:
        return None
    xshape = cx.shape(x)
    axis = int(at.get("axis", 1))
    if bs < 0 or not -len(xshape) <= axis < len(xshape):
        raise ModelError(f"{where(node)}: block_size {bs} / axis {axis} do not fit rank {len(xshape)}")
    axis %= len(xshape)
    want = tuple(-(-d // bs) if k == axis else d for k, d in enumerate(xshape))
    for name in (scale, zp):
        if name and cx.shape(name) != want:
            raise ModelError(f"{where(node)}: blocked {show(name)} has shape {list(cx.shape(name))}; input "
                             f"{list(xshape)} with block_size {bs} on axis {axis} needs {list(want)}")
    return axis, bs


def expand_blocks(a: np.ndarray, axis: int, bs: int, size: int) -> np.ndarray:
    """A blocked scale / zero point repeated to one value per element along `axis`."""
    return np.take(np.repeat(a, bs, axis=axis), np.arange(size), axis=axis)


def _check_qtype(node: onnx.NodeProto, dt: str, what: str) -> None:
    if dt not in QUANT_DTYPES:
        raise ModelError(f"{where(node)}: {what} element type {dt} is not supported "
                         f"({', '.join(QUANT_DTYPES)} only)")


def _check_scale(cx: ConvertContext, node: onnx.NodeProto, name: str) -> None:
    if name and _dtype(cx, name) not in ("float32", "float16"):
        raise ModelError(f"{where(node)}: scale element type {_dtype(cx, name)} is not supported "
                         "(float32 and float16 only)")


def dequantize_np(q: np.ndarray, scale: np.ndarray, zp: np.ndarray | None, axis: int | None) -> np.ndarray:
    """DequantizeLinear as onnxruntime computes it: float(int32(q) - zp) * scale, in float32."""
    shape = [1] * q.ndim
    if axis is not None:
        shape[axis] = -1
    s = np.asarray(scale, np.float32).reshape(shape if axis is not None else ())
    z = np.zeros((), np.int32) if zp is None else np.asarray(zp).astype(np.int32).reshape(s.shape)
    return ((q.astype(np.int32) - z).astype(np.float32) * s).astype(np.float32)


@converter("DequantizeLinear")
def convert_dequantize(cx: ConvertContext, node: onnx.NodeProto) -> None:
    x, scale, zp = node.input[0], node.input[1], cx.input(node, 2)
    dt = _dtype(cx, x)
    if dt != "int32":
        _check_qtype(node, dt, "input")
    _check_scale(cx, node, scale)
    if _dtype(cx, node.output[0]) != "float32":
        raise ModelError(f"{where(node)}: output type {_dtype(cx, node.output[0])} is not "
                         "supported")
    if (blocked := _blocked(cx, node, x, scale, zp)) is not None:
        axis, bs = blocked
        q, s, z = cx.const(x), cx.const(scale), cx.const(zp)
        if q is not None and s is not None and (not zp or z is not None):
            d = q.shape[axis]
            cx.value(node.output[0]).data = ((q.astype(np.int32) - (0 if z is None else expand_blocks(
                z, axis, bs, d).astype(np.int32))).astype(np.float32) * expand_blocks(s, axis, bs, d)).astype(np.float32)
            return
        cx.emit("DequantizeLinear", [x, scale, zp], [node.output[0]], node.name, axis=axis, block_size=bs)
        return
    axis = _axis(cx, node, x, scale)
    q, s, z = cx.const(x), cx.const(scale), cx.const(zp)
    if q is not None and s is not None and (not zp or z is not None):
        out = cx.value(node.output[0])
        out.data = dequantize_np(q, s, z, axis)
        out.quant = {"q": q, "scale": np.asarray(s, np.float32), "zp": z, "axis": axis}
        return
    cx.emit("DequantizeLinear", [x, scale, zp], [node.output[0]], node.name, axis=axis)


@converter("QuantizeLinear")
def convert_quantize(cx: ConvertContext, node: onnx.NodeProto) -> None:
    x, scale, zp = node.input[0], node.input[1], cx.input(node, 2)
    if _dtype(cx, x) != "float32":
        raise ModelError(f"{where(node)}: input type {_dtype(cx, x)} is not supported "
                         "(float32 only)")
    _check_scale(cx, node, scale)
    _check_qtype(node, _dtype(cx, node.output[0]), "output")
    at = cx.attrs(node)
    if int(at.get("saturate", 1)) != 1:
        raise ModelError(f"{where(node)}: saturate=0 is only defined for float8 outputs")
    if (blocked := _blocked(cx, node, x, scale, zp)) is not None:
        cx.emit("QuantizeLinear", [x, scale, zp], [node.output[0]], node.name, axis=blocked[0], block_size=blocked[1])
        return
    axis = _axis(cx, node, x, scale)
    cx.emit("QuantizeLinear", [x, scale, zp], [node.output[0]], node.name, axis=axis)


@converter("DynamicQuantizeLinear")
def convert_dynamic_quantize(cx: ConvertContext, node: onnx.NodeProto) -> None:
    if _dtype(cx, node.input[0]) != "float32":
        raise ModelError(f"{where(node)}: input type {_dtype(cx, node.input[0])} is not supported")
    outs = list(node.output) + [""] * (3 - len(node.output))
    y = outs[0]
    s = outs[1] or cx.temp(f"{y}_scale", np.float32, ())
    z = outs[2] or cx.temp(f"{y}_zp", np.uint8, ())
    cx.emit("DynamicQuantizeLinear", [node.input[0]], [y, s, z], node.name)


def _per(cx: ConvertContext, node: onnx.NodeProto, name: str, sizes: tuple[int, ...], what: str) -> None:
    """A scale / zero point must be one value or a vector of one of `sizes` values."""
    if not name:
        return
    shape = cx.shape(name)
    n = int(np.prod(shape, dtype=np.int64))
    if len(shape) > 1 or (n != 1 and n not in sizes):
        raise ModelError(f"{where(node)}: {what} of shape {list(shape)} is not supported "
                         f"(a scalar or a vector of {' or '.join(map(str, sizes))})")


def _check_int_inputs(cx: ConvertContext, node: onnx.NodeProto, names: list[str]) -> None:
    for n in names:
        if n and _dtype(cx, n) not in ("uint8", "int8"):
            raise ModelError(f"{where(node)}: element type {_dtype(cx, n)} of {show(n)} is not "
                             "supported "
                             "(uint8 and int8 only)")


@converter("QLinearConv")
def convert_qlinear_conv(cx: ConvertContext, node: onnx.NodeProto) -> None:
    x, xs, xz, w, ws, wz, ys, yz = (cx.input(node, k) for k in range(8))
    bias = cx.input(node, 8)
    _check_int_inputs(cx, node, [x, w, xz, wz, yz, node.output[0]])
    for s in (xs, ws, ys):
        _check_scale(cx, node, s)
    m = cx.shape(w)[0]
    _per(cx, node, ws, (m,), "w_scale")
    _per(cx, node, wz, (m,), "w_zero_point")
    for n, what in ((xs, "x_scale"), (xz, "x_zero_point"), (ys, "y_scale"), (yz, "y_zero_point")):
        _per(cx, node, n, (), what)
    attrs = conv_attrs(cx, node, x, w)
    check_bias(cx, node, 8, m)
    cx.emit("QConv", [x, xs, xz, w, ws, wz, ys, yz, bias], [node.output[0]], node.name, requant=True, **attrs)


@converter("ConvInteger")
def convert_conv_integer(cx: ConvertContext, node: onnx.NodeProto) -> None:
    x, w, xz, wz = (cx.input(node, k) for k in range(4))
    _check_int_inputs(cx, node, [x, w, xz, wz])
    m = cx.shape(w)[0]
    _per(cx, node, xz, (), "x_zero_point")
    _per(cx, node, wz, (m,), "w_zero_point")
    attrs = conv_attrs(cx, node, x, w)
    cx.emit("QConv", [x, "", xz, w, "", wz, "", "", ""], [node.output[0]], node.name, requant=False, **attrs)


def _matmul_params(cx: ConvertContext, node: onnx.NodeProto, a: str, b: str) -> None:
    sa, sb = cx.shape(a), cx.shape(b)
    if len(sa) < 1 or len(sb) < 1:
        raise ModelError(f"{where(node)}: operands must have rank >= 1")


@converter("QLinearMatMul")
def convert_qlinear_matmul(cx: ConvertContext, node: onnx.NodeProto) -> None:
    a, as_, az, b, bs, bz, ys, yz = (cx.input(node, k) for k in range(8))
    _check_int_inputs(cx, node, [a, b, az, bz, yz, node.output[0]])
    for s in (as_, bs, ys):
        _check_scale(cx, node, s)
    _matmul_params(cx, node, a, b)
    m = cx.shape(a)[-2] if len(cx.shape(a)) > 1 else 1
    n = cx.shape(b)[-1] if len(cx.shape(b)) > 1 else 1
    _per(cx, node, as_, (m,), "a_scale")
    _per(cx, node, az, (m,), "a_zero_point")
    _per(cx, node, bs, (n,), "b_scale")
    _per(cx, node, bz, (n,), "b_zero_point")
    _per(cx, node, ys, (), "y_scale")
    _per(cx, node, yz, (), "y_zero_point")
    cx.emit("QMatMul", [a, as_, az, b, bs, bz, ys, yz, ""], [node.output[0]], node.name, requant=True)


@converter("MatMulInteger")
def convert_matmul_integer(cx: ConvertContext, node: onnx.NodeProto) -> None:
    a, b, az, bz = (cx.input(node, k) for k in range(4))
    _check_int_inputs(cx, node, [a, b, az, bz])
    _matmul_params(cx, node, a, b)
    m = cx.shape(a)[-2] if len(cx.shape(a)) > 1 else 1
    n = cx.shape(b)[-1] if len(cx.shape(b)) > 1 else 1
    _per(cx, node, az, (m,), "a_zero_point")
    _per(cx, node, bz, (n,), "b_zero_point")
    cx.emit("QMatMul", [a, "", az, b, "", bz, "", "", ""], [node.output[0]], node.name, requant=False)

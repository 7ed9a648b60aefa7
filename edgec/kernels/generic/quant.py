"""QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QAdd, and the requantization helpers
shared by the integer conv / matmul kernels.

Numerics follow onnxruntime (MLAS) exactly:
- quantize:   q = clamp(x / scale, qmin - zp, qmax - zp) rounded half to even, + zp
- dequantize: x = float(int32(q) - zp) * scale
- requantize: q = clamp(float(acc) * multiplier, qmin - zp, qmax - zp) rounded half to even, + zp
Rounding needs no libm: after the clamp |v| < 2^16, so adding and subtracting 1.5 * 2^23 rounds
to the nearest integer, ties to even, in the default floating-point mode (no fast-math flags on
those two instructions, so LLVM keeps them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from llvmlite import ir

from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.loops import for_range_carried
from edgec.codegen.types import F32, I32, is_signed, llvm_type
from edgec.kernels.generic.reduce import entry_alloca

ROUND_MAGIC = 12582912.0  # 1.5 * 2**23


def qrange(dtype: np.dtype | str) -> tuple[int, int]:
    info = np.iinfo(np.dtype(dtype))
    return int(info.min), int(info.max)


def to_i32(b: ir.IRBuilder, v: ir.Value, dtype: np.dtype | str) -> ir.Value:
    """Widen an integer (scalar or vector) of `dtype` to i32."""
    ty = ir.VectorType(I32, v.type.count) if isinstance(v.type, ir.VectorType) else I32
    if v.type == ty:
        return v
    return b.sext(v, ty) if is_signed(dtype) else b.zext(v, ty)


def load_i32(kc: KernelContext, name: str, index: ir.Value | int) -> ir.Value:
    """Element `index` of an integer value as i32; 0 when `name` is absent ("")."""
    if not name:
        return ir.Constant(I32, 0)
    return to_i32(kc.b, kc.load(name, index), kc.dtype(name))


def load_f32(kc: KernelContext, name: str, index: ir.Value | int) -> ir.Value:
    v = kc.load(name, index)
    return kc.b.fpext(v, F32) if v.type != F32 else v


def per_index(kc: KernelContext, name: str, i: ir.Value) -> ir.Value | int:
    """Index into a per-channel parameter: `i` when it has several values, else 0."""
    return i if name and kc.value(name).size > 1 else 0


def _splat(b: ir.IRBuilder, v: ir.Value | float, ty: ir.Type) -> ir.Value:
    if not isinstance(ty, ir.VectorType):
        return v if isinstance(v, ir.Value) else ir.Constant(ty, v)
    if not isinstance(v, ir.Value):
        return ir.Constant(ty, [v] * ty.count)
    vec = b.insert_element(ir.Constant(ty, ir.Undefined), v, ir.Constant(I32, 0))
    return b.shuffle_vector(vec, ir.Constant(ty, ir.Undefined), ir.Constant(ir.VectorType(I32, ty.count), [0] * ty.count))


def _minmax(b: ir.IRBuilder, name: str, x: ir.Value, y: ir.Value, finite: bool = False) -> ir.Value:
    ty = x.type
    suffix = f"v{ty.count}f32" if isinstance(ty, ir.VectorType) else "f32"
    fname = f"llvm.{name}.{suffix}"
    fn = b.module.globals.get(fname) or ir.Function(b.module, ir.FunctionType(ty, [ty, ty]), fname)
    return b.call(fn, [x, y], fastmath=("nnan",) if finite else ())


def round_clamp(b: ir.IRBuilder, v: ir.Value, zp: ir.Value, qmin: int, qmax: int,
                finite: bool = False) -> ir.Value:
    """clamp(v, qmin - zp, qmax - zp), round half to even, + zp: i32 (vector if `v` is one).
    `zp` is an i32 of the same shape. NaN goes to qmin - zp, like MLAS on x86. After the clamp
    |v| < 2^17, so the low mantissa bits of v + 1.5 * 2^23 are the rounded integer.
    `finite`: v cannot be NaN (an int32 sum times a finite multiplier): plain min/max, without
    the compare-and-blend pair per bound that NaN ordering costs on x86."""
    ty = v.type
    vec = isinstance(ty, ir.VectorType)
    ity = ir.VectorType(I32, ty.count) if vec else I32
    lo = b.sitofp(b.sub(_splat(b, ir.Constant(I32, qmin), ity) if vec else ir.Constant(I32, qmin), zp), ty)
    hi = b.sitofp(b.sub(_splat(b, ir.Constant(I32, qmax), ity) if vec else ir.Constant(I32, qmax), zp), ty)
    v = _minmax(b, "minnum", _minmax(b, "maxnum", v, lo, finite), hi, finite)  # NaN -> lo
    bits = b.bitcast(b.fadd(v, _splat(b, ROUND_MAGIC, ty)), ity)
    return b.add(b.sub(bits, _splat(b, ir.Constant(I32, 0x4B400000), ity) if vec else ir.Constant(I32, 0x4B400000)), zp)


def narrow(b: ir.IRBuilder, v: ir.Value, dtype: np.dtype | str) -> ir.Value:
    t = llvm_type(dtype)
    if isinstance(v.type, ir.VectorType):
        t = ir.VectorType(t, v.type.count)
    return v if v.type == t else b.trunc(v, t)


def _axis_nest(kc: KernelContext, name: str, axis: int | None) -> tuple[int, int, int]:
    shape = kc.shape(name)
    if axis is None:
        return 1, 1, int(np.prod(shape, dtype=np.int64))
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    return outer, shape[axis], inner


def quantize_value(b: ir.IRBuilder, x: ir.Value, scale: ir.Value, zp: ir.Value, dtype: np.dtype | str) -> ir.Value:
    """QuantizeLinear of one float: round_clamp(x / scale) + zp, narrowed to `dtype`."""
    return narrow(b, round_clamp(b, b.fdiv(x, scale), zp, *qrange(dtype)), dtype)


def dequantize_value(b: ir.IRBuilder, q: ir.Value, scale: ir.Value, zp: ir.Value) -> ir.Value:
    """DequantizeLinear of one i32 code: float(q - zp) * scale."""
    return b.fmul(b.sitofp(b.sub(q, zp), F32), scale)


def _blocks(kc: KernelContext, x: str) -> Iterator[tuple[ir.Value, ir.Value]]:
    """Blocked quantization's loop nest (runs the body once): (element index of x, index of its
    block's scale / zero point), the scale being x's shape with axis `a` cut to ceil(D / bs)."""
    b = kc.b
    axis, bs = kc.attrs["axis"], kc.attrs["block_size"]
    outer, dim, inner = _axis_nest(kc, x, axis)
    nb = -(-dim // bs)
    with kc.loop(outer, "o") as o, kc.loop(dim, "c") as c:
        sbase = b.mul(b.add(b.mul(o, kc.idx(nb)), b.udiv(c, kc.idx(bs))), kc.idx(inner))
        base = b.mul(b.add(b.mul(o, kc.idx(dim)), c), kc.idx(inner))
        with kc.loop(inner, "i") as i:
            yield b.add(base, i), b.add(sbase, i)


@lowering("QuantizeLinear")
def lower_quantize(kc: KernelContext) -> None:
    x, scale, zp = kc.inputs[0], kc.inputs[1], kc.inputs[2] if len(kc.inputs) > 2 else ""
    y = kc.outputs[0]
    b = kc.b
    if kc.attrs.get("block_size"):
        for idx, p in _blocks(kc, x):
            kc.store(y, idx, quantize_value(b, kc.load(x, idx), load_f32(kc, scale, p), load_i32(kc, zp, p),
                                            kc.dtype(y)))
        return
    outer, dim, inner = _axis_nest(kc, x, kc.attrs.get("axis"))
    with kc.loop(outer, "o") as o, kc.loop(dim, "c") as c:
        s = load_f32(kc, scale, per_index(kc, scale, c))
        z = load_i32(kc, zp, per_index(kc, zp, c))
        base = b.mul(b.add(b.mul(o, kc.idx(dim)), c), kc.idx(inner))
        with kc.loop(inner, "i") as i:
            idx = b.add(base, i)
            kc.store(y, idx, quantize_value(b, kc.load(x, idx), s, z, kc.dtype(y)))


@lowering("DequantizeLinear")
def lower_dequantize(kc: KernelContext) -> None:
    x, scale, zp = kc.inputs[0], kc.inputs[1], kc.inputs[2] if len(kc.inputs) > 2 else ""
    y = kc.outputs[0]
    b = kc.b
    if kc.attrs.get("block_size"):
        for idx, p in _blocks(kc, x):
            kc.store(y, idx, dequantize_value(b, load_i32(kc, x, idx), load_f32(kc, scale, p), load_i32(kc, zp, p)))
        return
    outer, dim, inner = _axis_nest(kc, x, kc.attrs.get("axis"))
    with kc.loop(outer, "o") as o, kc.loop(dim, "c") as c:
        s = load_f32(kc, scale, per_index(kc, scale, c))
        z = load_i32(kc, zp, per_index(kc, zp, c))
        base = b.mul(b.add(b.mul(o, kc.idx(dim)), c), kc.idx(inner))
        with kc.loop(inner, "i") as i:
            idx = b.add(base, i)
            kc.store(y, idx, dequantize_value(b, load_i32(kc, x, idx), s, z))


def dynamic_uint8_params(kc: KernelContext, n: int,
                         load: Callable[[ir.Value], ir.Value]) -> tuple[ir.Value, ir.Value]:
    """(scale f32, zero point i32) of onnxruntime's dynamic uint8 quantization of the `n`
    values `load(i)`: range widened to include 0, scale = (max - min) / 255 (1 when the range
    is empty), zero point = round(clamp(0 - min / scale, 0, 255))."""
    b = kc.b
    zero = ir.Constant(F32, 0.0)
    lo_slot, hi_slot = entry_alloca(kc, F32), entry_alloca(kc, F32)
    b.store(zero, lo_slot)
    b.store(zero, hi_slot)
    with kc.loop(n, "r") as i:
        v = load(i)
        lo, hi = b.load(lo_slot), b.load(hi_slot)
        b.store(b.select(b.fcmp_ordered("<", v, lo), v, lo), lo_slot)
        b.store(b.select(b.fcmp_ordered(">", v, hi), v, hi), hi_slot)
    return uint8_params_of_range(b, b.load(lo_slot), b.load(hi_slot))


def uint8_params_of_range(b: ir.IRBuilder, lo: ir.Value, hi: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(scale, zero point) of dynamic_uint8_params from the range [lo, hi] (which holds 0)."""
    zero = ir.Constant(F32, 0.0)
    same = b.fcmp_ordered("==", lo, hi)
    scale = b.select(same, ir.Constant(F32, 1.0), b.fdiv(b.fsub(hi, lo), ir.Constant(F32, 255.0)))
    zp = round_clamp(b, b.fsub(zero, b.fdiv(lo, scale)), ir.Constant(I32, 0), 0, 255)
    return scale, zp


def _vector_range(kc: KernelContext, x: str, n: int, lanes: int) -> tuple[ir.Value, ir.Value]:
    """min and max of the n values of x and 0, `lanes` at a time (the scalar select chain of
    dynamic_uint8_params is a loop-carried dependency LLVM does not vectorize: without fast-math
    a min reduction cannot be reordered). A NaN is skipped as there (compares are false)."""
    b = kc.b
    vty = ir.VectorType(F32, lanes)
    zero = ir.Constant(vty, [0.0] * lanes)

    def fold(lo: ir.Value, hi: ir.Value, v: ir.Value) -> tuple[ir.Value, ir.Value]:
        return (b.select(b.fcmp_ordered("<", v, lo), v, lo), b.select(b.fcmp_ordered(">", v, hi), v, hi))

    with for_range_carried(b, n // lanes, kc.isize, [zero, zero], "mm") as lp:
        v = b.load(b.bitcast(kc.gep(x, b.mul(lp.index, kc.idx(lanes))), vty.as_pointer()), align=4)
        lp.next = list(fold(*lp.values, v))
    vlo, vhi = lp.values
    lo, hi = ir.Constant(F32, 0.0), ir.Constant(F32, 0.0)
    for i in range(lanes):
        lo = fold(lo, lo, b.extract_element(vlo, ir.Constant(I32, i)))[0]
        hi = fold(hi, hi, b.extract_element(vhi, ir.Constant(I32, i)))[1]
    for i in range(n - n % lanes, n):
        lo, hi = fold(lo, hi, kc.load(x, i))
    return lo, hi


@lowering("DynamicQuantizeLinear")
def lower_dynamic_quantize(kc: KernelContext) -> None:
    """uint8, as onnxruntime: range widened to include 0, scale = (max - min) / 255 (1 when the
    range is empty), zero point = round(clamp(0 - min / scale, 0, 255)), then QuantizeLinear."""
    x = kc.inputs[0]
    y, ys, yz = kc.outputs
    b = kc.b
    n = kc.value(x).size
    lanes = kc.target.fp32_lanes
    scale, zpi = uint8_params_of_range(b, *_vector_range(kc, x, n, lanes))
    kc.store(ys, 0, scale)
    kc.store(yz, 0, b.trunc(zpi, llvm_type(kc.dtype(yz))))
    vty, ity = ir.VectorType(F32, lanes), ir.VectorType(I32, lanes)
    vscale, vzp = _splat(b, scale, vty), _splat(b, zpi, ity)
    with kc.loop(n // lanes, "qv") as i:
        at = b.mul(i, kc.idx(lanes))
        v = b.load(b.bitcast(kc.gep(x, at), vty.as_pointer()), align=4)
        q = b.trunc(round_clamp(b, b.fdiv(v, vscale), vzp, 0, 255), ir.VectorType(llvm_type(kc.dtype(y)), lanes))
        b.store(q, b.bitcast(kc.gep(y, at), q.type.as_pointer()), align=1)
    for i in range(n - n % lanes, n):
        q = round_clamp(b, b.fdiv(kc.load(x, i), scale), zpi, 0, 255)
        kc.store(y, i, b.trunc(q, llvm_type(kc.dtype(y))))


@lowering("QAdd")
def lower_qadd(kc: KernelContext) -> None:
    """Add of two quantized tensors of the output's shape (the qdq pass makes it only then):
    dequantize both, add in float, quantize, as onnxruntime's QDQ Add computes it. Optional
    `qmin`/`qmax` attributes narrow the clamp (a fused Relu)."""
    a, as_, az, c, cs, cz, ys, yz = kc.inputs[:8]
    y = kc.outputs[0]
    b = kc.b
    qmin, qmax = qrange(kc.dtype(y))
    qmin, qmax = max(qmin, kc.attrs.get("qmin", qmin)), min(qmax, kc.attrs.get("qmax", qmax))
    sa, sc, sy = load_f32(kc, as_, 0), load_f32(kc, cs, 0), load_f32(kc, ys, 0)
    za, zc, zy = load_i32(kc, az, 0), load_i32(kc, cz, 0), load_i32(kc, yz, 0)
    with kc.loop(kc.value(y).size, "i") as i:
        fa = b.fmul(b.sitofp(b.sub(load_i32(kc, a, i), za), F32), sa)
        fc = b.fmul(b.sitofp(b.sub(load_i32(kc, c, i), zc), F32), sc)
        q = round_clamp(b, b.fdiv(b.fadd(fa, fc), sy), zy, qmin, qmax)
        kc.store(y, i, narrow(b, q, kc.dtype(y)))


@lowering("QGlobalAveragePool")
def lower_qglobal_avg(kc: KernelContext) -> None:
    """Mean over H*W of quantized NCHW data: int32 sum of (x - zp), then one multiply by
    x_scale / (y_scale * H*W), rounded half to even (onnxruntime's QLinearGlobalAveragePool)."""
    x, xs, xz, ys, yz = kc.inputs[:5]
    y = kc.outputs[0]
    b = kc.b
    n_, c_, h_, w_ = kc.shape(x)
    hw = h_ * w_
    qmin, qmax = qrange(kc.dtype(y))
    mult = b.fdiv(load_f32(kc, xs, 0), b.fmul(load_f32(kc, ys, 0), ir.Constant(F32, float(hw))))
    zx, zy = load_i32(kc, xz, 0), load_i32(kc, yz, 0)
    slot = entry_alloca(kc, I32)
    with kc.loop(n_ * c_, "nc") as nc:
        b.store(ir.Constant(I32, 0), slot)
        base = b.mul(nc, kc.idx(hw))
        with kc.loop(hw, "i") as i:
            b.store(b.add(b.load(slot), load_i32(kc, x, b.add(base, i))), slot)
        acc = b.sub(b.load(slot), b.mul(zx, ir.Constant(I32, hw)))
        q = round_clamp(b, b.fmul(b.sitofp(acc, F32), mult), zy, qmin, qmax, finite=True)
        kc.store(y, nc, narrow(b, q, kc.dtype(y)))


@lowering("QLut")
def lower_qlut(kc: KernelContext) -> None:
    """y[i] = table[x[i]] (uint8 index, int8 offset by 128): one load per byte, no float."""
    x, table = kc.inputs[:2]
    y = kc.outputs[0]
    b = kc.b
    signed = is_signed(kc.dtype(x))
    with kc.loop(kc.value(y).size, "i") as i:
        v = kc.load(x, i)
        j = b.add(b.sext(v, I32), ir.Constant(I32, 128)) if signed else b.zext(v, I32)
        if kc.isize.width > 32:
            j = b.zext(j, kc.isize)
        kc.store(y, i, kc.load(table, j))

"""Elementwise kernels with broadcasting: one loop nest over the (collapsed) output shape and a
per-op scalar rule. The loop vectorizer turns the contiguous inner loop into SIMD code."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from llvmlite import ir

from edgec.codegen import mathfn as m
from edgec.codegen.activations import FLOAT_UNARY
from edgec.codegen.broadcast import broadcast_strides, collapse, contiguous_strides
from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.mathfn import FM, c
from edgec.codegen.types import F16, F32, I1, I8, is_float, is_signed, llvm_type

B = ir.IRBuilder


# Float ops that run on halves as they are where the core has fp16 arithmetic (their rules use
# constants of the operand's type): a chain of them needs no fcvtl/fcvtn around each vector.
# llvm-mca's Cortex-A76 model put PP-OCRv5 det's fp16 scale-and-shift blocks (conv, HardSwish,
# x * w + b) at 17 cycles per 8 halves through fp32 and 3.5 per 8 floats in an fp32 build.
HALF_NATIVE = {"Add", "Sub", "Mul", "Max", "Min", "Relu", "LeakyRelu", "HardSigmoid", "HardSwish", "Clip"}


def half_native(kc: KernelContext, names: list[str], ops: list[str]) -> bool:
    """Whether these fp16 values can go through `ops` in fp16 arithmetic on this target."""
    return (kc.target.fp16_arith and all(kc.dtype(n) == np.float16 for n in names)
            and all(op in HALF_NATIVE for op in ops))


def load_compute(kc: KernelContext, name: str, index: ir.Value, widen: bool = True) -> ir.Value:
    """Load one element; half is widened to float for arithmetic unless `widen` is off."""
    v = kc.load(name, index)
    return kc.b.fpext(v, F32) if v.type == F16 and widen else v


def store_result(kc: KernelContext, name: str, index: ir.Value, v: ir.Value) -> None:
    if v.type == I1:
        v = kc.b.zext(v, I8)
    if kc.dtype(name) == np.float16 and v.type != F16:
        v = kc.b.fptrunc(v, F16)
    kc.store(name, index, v)


def emit_elementwise(kc: KernelContext, inputs: list[str], output: str,
                     rule: Callable[[list[ir.Value]], ir.Value], widen: bool = True) -> None:
    """`widen` off: fp16 inputs reach `rule` as halves (see `half_native`)."""
    out_shape = kc.shape(output)
    strides = [contiguous_strides(out_shape)] + [broadcast_strides(kc.shape(i), out_shape) for i in inputs]
    dims, sts = collapse(out_shape, strides)
    with kc.nest(dims) as idx:
        vals = [load_compute(kc, name, kc.linear(idx, st), widen) for name, st in zip(inputs, sts[1:])]
        store_result(kc, output, kc.linear(idx, sts[0]), rule(vals))


# ---- binary rules ------------------------------------------------------------------------
def _pow(b: B, x: ir.Value, y: ir.Value) -> ir.Value:
    """x**y for floats, including negative x with integral y and the x == 0 cases."""
    ax = m.fabs(b, x)
    r = m.exp(b, m.fmul(b, y, m.log(b, ax)))
    yi = m.floor(b, y)
    is_int = b.fcmp_ordered("==", yi, y)
    half = m.fmul(b, yi, c(y, 0.5))
    odd = b.fcmp_ordered("!=", m.floor(b, half), half)
    neg = b.fcmp_ordered("<", x, c(x, 0.0))
    r = b.select(b.and_(neg, b.and_(is_int, odd)), b.fneg(r), r)
    r = b.select(b.and_(neg, b.not_(is_int)), c(x, float("nan")), r)
    zero = b.fcmp_ordered("==", x, c(x, 0.0))
    zr = b.select(b.fcmp_ordered(">", y, c(y, 0.0)), c(x, 0.0),
                  b.select(b.fcmp_ordered("==", y, c(y, 0.0)), c(x, 1.0), c(x, float("inf"))))
    r = b.select(zero, zr, r)
    return b.select(b.fcmp_ordered("==", y, c(y, 0.0)), c(x, 1.0), r)


def float_binary(op: str, b: B, x: ir.Value, y: ir.Value, attrs: dict) -> ir.Value:
    if op == "Add":
        return b.fadd(x, y, flags=FM)
    if op == "Sub":
        return b.fsub(x, y, flags=FM)
    if op == "Mul":
        return b.fmul(x, y, flags=FM)
    if op == "Div":
        return b.fdiv(x, y, flags=("contract", "nsz"))
    if op == "Pow":
        if y.type != x.type:
            y = b.sitofp(y, x.type) if isinstance(y.type, ir.IntType) else b.fpext(y, x.type) \
                if y.type == F32 else b.fptrunc(y, x.type)
        return _pow(b, x, y)
    if op == "PRelu":
        return b.select(b.fcmp_ordered("<", x, c(x, 0.0)), b.fmul(x, y, flags=FM), x)
    if op in ("Max", "Min"):
        if attrs.get("clip"):  # Clip with a run-time bound: a NaN x stays, a NaN bound is ignored
            return (m.fmax_keep_nan if op == "Max" else m.fmin_keep_nan)(b, x, y)
        return (m.fmax_nan if op == "Max" else m.fmin_nan)(b, x, y)  # NaN wins, as onnxruntime
    if op == "Mod":
        if attrs.get("fmod"):  # C fmod: the sign of the dividend, x - trunc(x/y)*y
            q = b.fdiv(x, y)
            t = b.select(b.fcmp_ordered("<", q, c(q, 0.0)), m.ceil(b, q), m.floor(b, q))
            return b.fsub(x, b.fmul(t, y))
        # Python-style modulo (the sign of the divisor), computed from fmod to stay exact.
        q = b.fdiv(x, y)
        t = b.select(b.fcmp_ordered("<", q, c(q, 0.0)), m.ceil(b, q), m.floor(b, q))
        r = b.fsub(x, b.fmul(t, y))
        fix = b.and_(b.fcmp_ordered("!=", r, c(r, 0.0)),
                     b.xor(b.fcmp_ordered("<", r, c(r, 0.0)), b.fcmp_ordered("<", y, c(y, 0.0))))
        return b.select(fix, b.fadd(r, y), r)
    cmp = {"Equal": "==", "Less": "<", "Greater": ">", "LessOrEqual": "<=", "GreaterOrEqual": ">="}
    if op in cmp:
        return b.fcmp_ordered(cmp[op], x, y)
    raise NotImplementedError(f"{op} on float")


def _int_binary(op: str, b: B, x: ir.Value, y: ir.Value, attrs: dict, signed: bool) -> ir.Value:
    simple = {"Add": b.add, "Sub": b.sub, "Mul": b.mul, "And": b.and_, "Or": b.or_, "Xor": b.xor}
    if op in simple:
        return simple[op](x, y)
    if op == "Div":
        return b.sdiv(x, y) if signed else b.udiv(x, y)
    if op == "Max":
        return b.select(b.icmp_signed(">", x, y) if signed else b.icmp_unsigned(">", x, y), x, y)
    if op == "Min":
        return b.select(b.icmp_signed("<", x, y) if signed else b.icmp_unsigned("<", x, y), x, y)
    if op == "PRelu":
        return b.select(b.icmp_signed("<", x, ir.Constant(x.type, 0)), b.mul(x, y), x)
    if op == "Mod":
        if not signed:
            return b.urem(x, y)
        r = b.srem(x, y)
        if attrs.get("fmod"):
            return r
        zero = ir.Constant(x.type, 0)
        fix = b.and_(b.icmp_signed("!=", r, zero),
                     b.icmp_signed("!=", b.icmp_signed("<", r, zero), b.icmp_signed("<", y, zero)))
        return b.select(fix, b.add(r, y), r)
    if op == "BitShift":
        # Shifting by >= the bit width is poison in LLVM; ONNX wants 0 (or the sign fill for
        # arithmetic right shifts of signed types).
        width = ir.Constant(x.type, x.type.width)
        big = b.icmp_unsigned(">=", y, width)
        if attrs["direction"] == "LEFT":
            return b.select(big, ir.Constant(x.type, 0), b.shl(x, y))
        if signed:
            return b.ashr(x, b.select(big, ir.Constant(x.type, x.type.width - 1), y))
        return b.select(big, ir.Constant(x.type, 0), b.lshr(x, y))
    cmp = {"Equal": "==", "Less": "<", "Greater": ">", "LessOrEqual": "<=", "GreaterOrEqual": ">="}
    if op in cmp:
        return b.icmp_signed(cmp[op], x, y) if signed else b.icmp_unsigned(cmp[op], x, y)
    raise NotImplementedError(f"{op} on integers")


@lowering("Add", "Sub", "Mul", "Div", "Pow", "PRelu", "Equal", "Less", "Greater", "LessOrEqual",
          "GreaterOrEqual", "And", "Or", "Xor", "Max", "Min", "Mod", "BitShift")
def lower_binary(kc: KernelContext) -> None:
    a, bname = kc.inputs[0], kc.inputs[1]
    op, dt = kc.node.op, kc.dtype(a)
    b = kc.b
    if op == "Pow" and is_float(dt) and kc.value(bname).is_const and kc.value(bname).size == 1:
        e = float(np.asarray(kc.value(bname).data).ravel()[0])
        special: dict[float, Callable[[ir.Value], ir.Value]] = {
            1.0: lambda x: x, 2.0: lambda x: b.fmul(x, x, flags=FM),
            3.0: lambda x: b.fmul(b.fmul(x, x, flags=FM), x, flags=FM),
            0.5: lambda x: m.sqrt(b, x), -1.0: lambda x: b.fdiv(c(x, 1.0), x),
            0.0: lambda x: c(x, 1.0)}
        if e in special:
            emit_elementwise(kc, [a], kc.outputs[0], lambda v: special[e](v[0]))
            return
    if is_float(dt):
        rule = lambda v: float_binary(op, b, v[0], v[1], kc.attrs)  # noqa: E731
    elif op == "Pow":
        rule = lambda v: _int_pow(b, v[0], v[1], is_signed(dt))  # noqa: E731
    else:
        rule = lambda v: _int_binary(op, b, v[0], v[1], kc.attrs, is_signed(dt))  # noqa: E731
    native = half_native(kc, [a, bname, kc.outputs[0]], [op])
    emit_elementwise(kc, [a, bname], kc.outputs[0], rule, widen=not native)


def _int_pow(b: B, x: ir.Value, y: ir.Value, signed: bool) -> ir.Value:
    """Integer base to an integer or float exponent, in the base's type, as onnxruntime's
    static_cast<T>(std::pow(x, y)): exact square-and-multiply for a whole exponent >= 0 (the
    product wraps like C when it overflows); for a negative one only |x| == 1 gives a nonzero
    integer; a fractional float exponent goes through float pow, truncated."""
    ity = x.type
    zero, one = ir.Constant(ity, 0), ir.Constant(ity, 1)
    frac = None
    if isinstance(y.type, (ir.FloatType, ir.HalfType, ir.DoubleType)):
        fx = b.sitofp(x, y.type) if signed else b.uitofp(x, y.type)
        via_float = b.fptosi(float_binary("Pow", b, fx, y, {}), ity)
        whole = b.fcmp_ordered("==", y, m.floor(b, y))
        frac = (whole, via_float)
        y = b.fptosi(b.select(whole, y, ir.Constant(y.type, 0.0)), ity)
    elif y.type.width != ity.width:
        y = b.trunc(y, ity) if y.type.width > ity.width else (b.sext(y, ity) if signed else b.zext(y, ity))
    r, base = one, x
    for i in range(ity.width - (1 if signed else 0)):
        bit = b.trunc(b.lshr(y, ir.Constant(ity, i)), ir.IntType(1))
        r = b.select(bit, b.mul(r, base), r)
        base = b.mul(base, base)
    if signed:  # a negative exponent: 1 for x == 1, +-1 for x == -1, else 0 (1 / x^n truncated)
        minus = ir.Constant(ity, -1)
        odd = b.trunc(y, ir.IntType(1))
        neg = b.select(b.icmp_signed("==", x, one), one,
                       b.select(b.icmp_signed("==", x, minus), b.select(odd, minus, one), zero))
        r = b.select(b.icmp_signed("<", y, zero), neg, r)
    if frac is not None:
        r = b.select(frac[0], r, frac[1])
    return r


def _int_unary(op: str, b: B, x: ir.Value, attrs: dict, signed: bool) -> ir.Value:
    zero = ir.Constant(x.type, 0)
    if op == "Relu":
        return b.select(b.icmp_signed(">", x, zero), x, zero)
    if op == "Neg":
        return b.neg(x)
    if op == "Abs":
        return b.select(b.icmp_signed("<", x, zero), b.neg(x), x) if signed else x
    if op == "Sign":
        one = ir.Constant(x.type, 1)
        pos = b.select(b.icmp_signed(">", x, zero) if signed else b.icmp_unsigned(">", x, zero), one, zero)
        return b.select(b.icmp_signed("<", x, zero), ir.Constant(x.type, -1), pos) if signed else pos
    if op == "Clip":
        lo, hi = ir.Constant(x.type, int(attrs["min"])), ir.Constant(x.type, int(attrs["max"]))
        lt = b.icmp_signed if signed else b.icmp_unsigned
        return b.select(lt(">", x, hi), hi, b.select(lt("<", x, lo), lo, x))
    if op == "Not":
        return b.xor(x, ir.Constant(x.type, 1))
    raise NotImplementedError(f"{op} on integers")


@lowering(*FLOAT_UNARY, "Not")
def lower_unary(kc: KernelContext) -> None:
    op, dt = kc.node.op, kc.dtype(kc.inputs[0])
    if is_float(dt) and op in FLOAT_UNARY:
        rule = FLOAT_UNARY[op]
        native = half_native(kc, [kc.inputs[0], kc.outputs[0]], [op])
        emit_elementwise(kc, [kc.inputs[0]], kc.outputs[0], lambda v: rule(kc.b, v[0], kc.attrs), widen=not native)
    else:
        emit_elementwise(kc, [kc.inputs[0]], kc.outputs[0],
                         lambda v: _int_unary(op, kc.b, v[0], kc.attrs, is_signed(dt)))


@lowering("Where")
def lower_where(kc: KernelContext) -> None:
    b = kc.b
    emit_elementwise(kc, kc.inputs[:3], kc.outputs[0],
                     lambda v: b.select(b.icmp_unsigned("!=", v[0], ir.Constant(v[0].type, 0)), v[1], v[2]))


def convert(b: B, v: ir.Value, src: np.dtype, dst: np.dtype) -> ir.Value:
    """Cast with ONNX semantics (float -> int truncates; -> bool is `!= 0`)."""
    src, dst = np.dtype(src), np.dtype(dst)
    if dst == np.bool_:
        nz = b.fcmp_unordered("!=", v, c(v, 0.0)) if is_float(src) else b.icmp_unsigned("!=", v, ir.Constant(v.type, 0))
        return b.zext(nz, I8)
    t = F32 if dst == np.float16 else llvm_type(dst)
    if is_float(src) and is_float(dst):
        if v.type == t:
            return v
        return b.fpext(v, t) if t.intrinsic_name == "f64" else b.fptrunc(v, t)
    if is_float(src):
        return b.fptosi(v, t) if is_signed(dst) else b.fptoui(v, t)
    if is_float(dst):
        return b.sitofp(v, t) if is_signed(src) else b.uitofp(v, t)
    if t.width == v.type.width:
        return v
    if t.width < v.type.width:
        return b.trunc(v, t)
    return b.sext(v, t) if is_signed(src) else b.zext(v, t)


@lowering("Cast")
def lower_cast(kc: KernelContext) -> None:
    src, dst = kc.dtype(kc.inputs[0]), kc.dtype(kc.outputs[0])
    if src == np.float16:
        src = np.dtype(np.float32)  # widened on load
    emit_elementwise(kc, [kc.inputs[0]], kc.outputs[0], lambda v: convert(kc.b, v[0], src, dst))


@lowering("Copy")
def lower_copy(kc: KernelContext) -> None:
    """Flat copy (source and destination may differ in shape, never in size)."""
    src, dst = kc.inputs[0], kc.outputs[0]
    with kc.loop(kc.value(dst).size) as i:
        kc.store(dst, i, kc.load(src, i))

"""Transcendental functions emitted inline as branch-free IR (selects, no calls), so loops that
use them still vectorize and generated code never needs libm.

Accuracy (float32, checked in tests/codegen/test_mathfn.py against numpy):
exp  : Cephes range reduction + degree-6 polynomial, <= 5 ulp (4.5 measured near the ends).
log  : atanh series on the mantissa in [sqrt(1/2), sqrt(2)), ~2 ulp.
tanh : Eigen's 13/6 rational, |err| < 1e-6.
erf  : Eigen's 13/8 rational, |err| < 2e-6 (abs).
"""

from __future__ import annotations

from collections.abc import Sequence

from llvmlite import ir

from edgec.codegen.types import F16, F32, I32

FM = ("reassoc", "contract", "nsz", "arcp", "afn")  # not nnan/ninf: NaN/inf paths use selects


# `edgec build --fast-math off`: the helpers here emit plain IEEE ops (no reassociation, no FMA
# contraction, exact division) and tanh uses the exp-based formulation (~2 ulp relative
# everywhere instead of the rational's 1e-6 absolute). The flag is read from the module being
# generated (a KernelModule carries its build's options), so no state outlives one build.
def fast_math_enabled(b: ir.IRBuilder) -> bool:
    return b.module.options.fast_math


def _fm(b: ir.IRBuilder) -> tuple[str, ...]:
    return FM if fast_math_enabled(b) else ()


def c(x: ir.Value, v: float) -> ir.Constant:
    return ir.Constant(x.type, v)


def fmul(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.fmul(x, y, flags=_fm(b))


def fadd(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.fadd(x, y, flags=_fm(b))


def fsub(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.fsub(x, y, flags=_fm(b))


def fdiv(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.fdiv(x, y, flags=("contract", "nsz") if fast_math_enabled(b) else ())


def poly(b: ir.IRBuilder, x: ir.Value, coeffs: Sequence[float]) -> ir.Value:
    """Horner: coeffs from the highest power down to the constant term."""
    acc = c(x, coeffs[0])
    for k in coeffs[1:]:
        acc = fadd(b, fmul(b, acc, x), c(x, k))
    return acc


def fmin(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.fcmp_ordered("<", x, y), x, y)


def fmax(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.fcmp_ordered(">", x, y), x, y)


# The same, but a NaN in `x` is kept (ONNX semantics: Relu, Clip, Tanh of NaN are NaN, as in
# onnxruntime). Still one minps/maxps on x86 (LLVM swaps the operands of the pattern).
def fmin_keep_nan(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.fcmp_ordered(">", x, y), y, x)


def fmax_keep_nan(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.fcmp_ordered("<", x, y), y, x)


def fabs(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return b.select(b.fcmp_ordered("<", x, c(x, 0.0)), b.fneg(x), x)


def clamp(b: ir.IRBuilder, x: ir.Value, lo: float, hi: float) -> ir.Value:
    return fmin_keep_nan(b, fmax_keep_nan(b, x, c(x, lo)), c(x, hi))


# ONNX Max/Min and ReduceMax/ReduceMin as onnxruntime computes them: a NaN on either side wins.
def fmax_nan(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.fcmp_unordered("uno", x, x), x, fmax(b, x, y))


def fmin_nan(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.fcmp_unordered("uno", x, x), x, fmin(b, x, y))


def floor(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """floor without libm (llvm.floor becomes a floorf call on armv7)."""
    wide = getattr(x.type, "element", x.type) == ir.DoubleType()
    ity = _like(x, ir.IntType(64) if wide else I32)
    big = 4503599627370496.0 if wide else 8388608.0
    t = b.sitofp(b.fptosi(x, ity), x.type)
    t = b.select(b.fcmp_ordered(">", t, x), b.fsub(t, c(x, 1.0)), t)
    return b.select(b.fcmp_ordered("<", fabs(b, x), c(x, big)), t, x)


def ceil(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return b.fneg(floor(b, b.fneg(x)))


def round_even(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """Round half to even (ONNX Round, QuantizeLinear)."""
    f = floor(b, x)
    diff = b.fsub(x, f)
    half = c(x, 0.5)
    up = b.fadd(f, c(x, 1.0))
    wide = getattr(x.type, "element", x.type) == ir.DoubleType()
    f_is_odd = b.trunc(b.fptosi(f, _like(x, ir.IntType(64) if wide else I32)), _like(x, ir.IntType(1)))
    tie = b.select(f_is_odd, up, f)
    r = b.select(b.fcmp_ordered(">", diff, half), up, b.select(b.fcmp_ordered("<", diff, half), f, tie))
    big = 4503599627370496.0 if wide else 8388608.0
    return b.select(b.fcmp_ordered("<", fabs(b, x), c(x, big)), r, x)


def _like(x: ir.Value, elem: ir.Type) -> ir.Type:
    """`elem`, or a vector of it as wide as `x`: the functions here work on scalars and vectors."""
    return ir.VectorType(elem, x.type.count) if isinstance(x.type, ir.VectorType) else elem


def _i32(x: ir.Value, v: int) -> ir.Constant:
    return ir.Constant(_like(x, I32), v)


def _as_f32(b: ir.IRBuilder, x: ir.Value) -> tuple[ir.Value, ir.Type]:
    """x as fp32 (the bit tricks below are fp32's) and its own type: doubles narrow, halves widen."""
    f32 = _like(x, F32)
    if x.type == f32:
        return x, x.type
    return (b.fpext(x, f32) if getattr(x.type, "element", x.type) == F16 else b.fptrunc(x, f32)), x.type


def _back(b: ir.IRBuilder, y: ir.Value, ty: ir.Type) -> ir.Value:
    if ty == y.type:
        return y
    return b.fptrunc(y, ty) if getattr(ty, "element", ty) == F16 else b.fpext(y, ty)


def exp(b: ir.IRBuilder, x0: ir.Value) -> ir.Value:
    x, ty = _as_f32(b, x0)
    xc = clamp(b, x, -87.33654, 88.72283)
    n = floor(b, fadd(b, fmul(b, xc, c(x, 1.4426950408889634)), c(x, 0.5)))
    r = fsub(b, fsub(b, xc, fmul(b, n, c(x, 0.693359375))), fmul(b, n, c(x, -2.12194440e-4)))
    p = poly(b, r, [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                    1.6666665459e-1, 5.0000001201e-1])
    p = fadd(b, fadd(b, fmul(b, p, fmul(b, r, r)), r), c(x, 1.0))
    # n reaches 128 just below the overflow threshold: build 2^(n-1) and double it there.
    ni = b.fptosi(n, _like(x, I32))
    top = b.icmp_signed(">", ni, _i32(x, 127))
    ni = b.select(top, _i32(x, 127), ni)
    bits = b.shl(b.add(ni, _i32(x, 127)), _i32(x, 23))
    # No reassociation here: 2^127 * 2 must never be formed before multiplying by p.
    y = b.fmul(b.fmul(p, b.bitcast(bits, _like(x, F32))), b.select(top, c(x, 2.0), c(x, 1.0)))
    y = b.select(b.fcmp_ordered(">", x, c(x, 88.72283)), c(x, float("inf")), y)
    y = b.select(b.fcmp_ordered("<", x, c(x, -87.33654)), c(x, 0.0), y)
    y = b.select(b.fcmp_unordered("uno", x, x), x, y)
    return _back(b, y, ty)


def log(b: ir.IRBuilder, x0: ir.Value) -> ir.Value:
    x, ty = _as_f32(b, x0)
    bits = b.bitcast(x, _like(x, I32))
    e = b.sub(b.and_(b.lshr(bits, _i32(x, 23)), _i32(x, 0xFF)), _i32(x, 127))
    m = b.bitcast(b.or_(b.and_(bits, _i32(x, 0x7FFFFF)), _i32(x, 0x3F800000)), _like(x, F32))
    hi = b.fcmp_ordered(">", m, c(x, 1.4142135623730951))
    m = b.select(hi, fmul(b, m, c(x, 0.5)), m)
    e = b.select(hi, b.add(e, _i32(x, 1)), e)
    s = fdiv(b, fsub(b, m, c(x, 1.0)), fadd(b, m, c(x, 1.0)))
    s2 = fmul(b, s, s)
    p = poly(b, s2, [2 / 11, 2 / 9, 2 / 7, 2 / 5, 2 / 3, 2.0])
    y = fadd(b, fmul(b, s, p), fmul(b, b.sitofp(e, _like(x, F32)), c(x, 0.6931471805599453)))
    y = b.select(b.fcmp_ordered("==", x, c(x, 0.0)), c(x, float("-inf")), y)
    y = b.select(b.fcmp_ordered("<", x, c(x, 0.0)), c(x, float("nan")), y)
    y = b.select(b.fcmp_ordered("==", x, c(x, float("inf"))), x, y)
    y = b.select(b.fcmp_unordered("uno", x, x), x, y)
    return _back(b, y, ty)


def tanh(b: ir.IRBuilder, x0: ir.Value) -> ir.Value:
    if not fast_math_enabled(b):
        return _tanh_exact(b, x0)
    x, ty = _as_f32(b, x0)
    xc = clamp(b, x, -7.90531110763549805, 7.90531110763549805)
    x2 = fmul(b, xc, xc)
    p = poly(b, x2, [-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
                     5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
                     4.89352455891786e-03])
    q = poly(b, x2, [1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
                     4.89352518554385e-03])
    y = fdiv(b, fmul(b, xc, p), q)
    y = b.select(b.fcmp_ordered("<", fabs(b, x), c(x, 0.0004)), x, y)
    return _back(b, y, ty)


def _tanh_exact(b: ir.IRBuilder, x0: ir.Value) -> ir.Value:
    """Cephes tanhf: odd polynomial below |x| = 0.625, else 1 - 2 / (exp(2|x|) + 1)."""
    x, ty = _as_f32(b, x0)
    ax = fabs(b, x)
    z = fmul(b, x, x)
    small = fadd(b, x, fmul(b, fmul(b, x, z), poly(b, z, [-5.70498872745e-3, 2.06390887954e-2,
                                                          -5.37397155531e-2, 1.33314422036e-1,
                                                          -3.33332819422e-1])))
    e = exp(b, fmul(b, clamp(b, ax, 0.0, 10.0), c(x, 2.0)))  # tanh(10) rounds to 1
    big = fsub(b, c(x, 1.0), fdiv(b, c(x, 2.0), fadd(b, e, c(x, 1.0))))
    big = b.select(b.fcmp_ordered("<", x, c(x, 0.0)), b.fneg(big), big)
    y = b.select(b.fcmp_ordered("<", ax, c(x, 0.625)), small, big)
    y = b.select(b.fcmp_unordered("uno", x, x), x, y)
    return _back(b, y, ty)


def sigmoid(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return fdiv(b, c(x, 1.0), fadd(b, c(x, 1.0), exp(b, b.fneg(x))))


def erf(b: ir.IRBuilder, x0: ir.Value) -> ir.Value:
    x, ty = _as_f32(b, x0)
    xc = clamp(b, x, -4.0, 4.0)
    x2 = fmul(b, xc, xc)
    p = poly(b, x2, [-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
                     -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
                     -1.60960333262415e-02])
    q = poly(b, x2, [-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
                     -7.37332916720468e-03, -1.42647390514189e-02])
    return _back(b, fdiv(b, fmul(b, xc, p), q), ty)


def sqrt(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    # llvm.sqrt lowers to an instruction on every target we support (sqrtss, fsqrt, vsqrt).
    fn = b.module.declare_intrinsic("llvm.sqrt", [x.type])
    return b.call(fn, [x])

"""sin and cos without libm (edgec's kernels link no libm), float32 accuracy.

Quadrant n = round(x * 2/pi); r = x - n * pi/2 with pi/2 split in three float32 parts
(Cody-Waite, exact products for |n| < 2^12 or so); then Cephes' minimax polynomials for sin and
cos on [-pi/4, pi/4], chosen and signed by n mod 4. The reduction uses plain IEEE operations
(no fast-math flags: reassociating it would cancel the split). Accuracy degrades slowly for
|x| beyond ~1e4, like any float32 Cody-Waite reduction; NaN and +-inf give NaN.
"""

from __future__ import annotations

from llvmlite import ir

from edgec.codegen.mathfn import _as_f32, _back, _i32, _like, c, floor
from edgec.codegen.types import I32

PIO2 = (1.5703125, 4.837512969970703125e-4, 7.54978995489188216e-8)
SIN = (-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1)
COS = (2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2)


def _poly(b: ir.IRBuilder, z: ir.Value, coeffs: tuple[float, ...]) -> ir.Value:
    acc = c(z, coeffs[0])
    for k in coeffs[1:]:
        acc = b.fadd(b.fmul(acc, z), c(z, k))
    return acc


def _reduced(b: ir.IRBuilder, x: ir.Value) -> tuple[ir.Value, ir.Value, ir.Value]:
    """(sin r, cos r, n mod 4) for x = n * pi/2 + r."""
    n = floor(b, b.fadd(b.fmul(x, c(x, 0.6366197723675814)), c(x, 0.5)))
    r = x
    for part in PIO2:
        r = b.fsub(r, b.fmul(n, c(x, part)))
    z = b.fmul(r, r)
    s = b.fadd(r, b.fmul(b.fmul(z, r), _poly(b, z, SIN)))
    co = b.fadd(b.fsub(c(x, 1.0), b.fmul(z, c(x, 0.5))), b.fmul(b.fmul(z, z), _poly(b, z, COS)))
    q = b.and_(b.fptosi(n, _like(x, I32)), _i32(x, 3))
    return s, co, q


def _pick(b: ir.IRBuilder, q: ir.Value, vals: tuple[ir.Value, ir.Value, ir.Value, ir.Value]) -> ir.Value:
    out = vals[3]
    for k in (2, 1, 0):
        out = b.select(b.icmp_signed("==", q, _i32(q, k)), vals[k], out)
    return out


def sin(b: ir.IRBuilder, x0: ir.Value) -> ir.Value:
    x, ty = _as_f32(b, x0)
    s, co, q = _reduced(b, x)
    return _back(b, _pick(b, q, (s, co, b.fneg(s), b.fneg(co))), ty)


def cos(b: ir.IRBuilder, x0: ir.Value) -> ir.Value:
    x, ty = _as_f32(b, x0)
    s, co, q = _reduced(b, x)
    return _back(b, _pick(b, q, (co, b.fneg(s), b.fneg(co), s)), ty)

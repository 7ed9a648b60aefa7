"""QConv (QLinearConv / ConvInteger) and QMatMul (QLinearMatMul / MatMulInteger): the generic
integer kernels. Every parameter may be a run-time value; exact int32 accumulation of
(x - x_zp) * (w - w_zp), bias added in int32, then requantization with the fp32 multiplier
x_scale * w_scale / y_scale (that order: onnxruntime's) or the raw int32 sum (`requant` False).

The fast path for constant weights is `QConvDirect` (qconv_direct.py), chosen by the
`prepare-qconv` target pass; these kernels are the correct-everywhere fallback.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from edgec.codegen.broadcast import broadcast_strides, collapse, contiguous_strides
from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.types import F32, I32
from edgec.kernels.generic.quant import load_f32, load_i32, narrow, per_index, qrange, round_clamp
from edgec.kernels.generic.reduce import fold


def _requant_store(kc: KernelContext, acc: ir.Value, out: str, idx: ir.Value,
                   xs: str, ws: str, ys: str, yz: str, wi: ir.Value | int, xi: ir.Value | int = 0) -> None:
    b = kc.b
    if not kc.attrs.get("requant", True):
        kc.store(out, idx, acc)
        return
    mult = b.fdiv(b.fmul(load_f32(kc, xs, xi), load_f32(kc, ws, wi)), load_f32(kc, ys, 0))
    qmin, qmax = qrange(kc.dtype(out))
    qmin, qmax = max(qmin, kc.attrs.get("qmin", qmin)), min(qmax, kc.attrs.get("qmax", qmax))
    q = round_clamp(b, b.fmul(b.sitofp(acc, F32), mult), load_i32(kc, yz, 0), qmin, qmax, finite=True)
    kc.store(out, idx, narrow(b, q, kc.dtype(out)))


@lowering("QConv")
def lower_qconv(kc: KernelContext) -> None:
    x, xs, xz, w, ws, wz, ys, yz, bias = (kc.inputs + [""] * 9)[:9]
    y = kc.outputs[0]
    b = kc.b
    n_, c_, h_, w_ = kc.shape(x) if len(kc.shape(x)) == 4 else (kc.shape(x)[0], kc.shape(x)[1], 1, kc.shape(x)[2])
    m_ = kc.shape(w)[0]
    oh_, ow_ = (kc.shape(y)[2], kc.shape(y)[3]) if len(kc.shape(y)) == 4 else (1, kc.shape(y)[2])
    kh_, kw_ = kc.attrs["kernel"]
    sh, sw = kc.attrs["strides"]
    dh, dw = kc.attrs["dilations"]
    pt, pl = kc.attrs["pads"][:2]
    groups = kc.attrs.get("group", 1)
    cg, mg = c_ // groups, m_ // groups
    x_zp = load_i32(kc, xz, 0)
    zero = ir.Constant(I32, 0)
    with kc.nest([n_, m_, oh_, ow_], "o") as (n, m, oh, ow):
        grp = b.udiv(m, kc.idx(mg))
        w_zp = load_i32(kc, wz, per_index(kc, wz, m))
        ih0 = b.sub(b.mul(oh, kc.idx(sh)), kc.idx(pt))
        iw0 = b.sub(b.mul(ow, kc.idx(sw)), kc.idx(pl))
        cbase = b.mul(grp, kc.idx(cg))

        def step(acc: ir.Value, idx: list[ir.Value]) -> ir.Value:
            c, ky, kx = idx
            ih = b.add(ih0, b.mul(ky, kc.idx(dh)))
            iw = b.add(iw0, b.mul(kx, kc.idx(dw)))
            inside = b.and_(b.and_(b.icmp_signed(">=", ih, kc.idx(0)), b.icmp_signed("<", ih, kc.idx(h_))),
                            b.and_(b.icmp_signed(">=", iw, kc.idx(0)), b.icmp_signed("<", iw, kc.idx(w_))))
            xi = kc.linear([n, b.add(cbase, c), ih, iw], [c_ * h_ * w_, h_ * w_, w_, 1])
            xv = b.sub(load_i32(kc, x, b.select(inside, xi, kc.idx(0))), x_zp)
            wi = kc.linear([m, c, ky, kx], [cg * kh_ * kw_, kh_ * kw_, kw_, 1])
            wv = b.sub(load_i32(kc, w, wi), w_zp)
            return b.add(acc, b.mul(b.select(inside, xv, zero), wv))

        acc = fold(kc, [cg, kh_, kw_], zero, step, "r")
        if bias:
            acc = b.add(acc, load_i32(kc, bias, m))
        out = kc.linear([n, m, oh, ow], [m_ * oh_ * ow_, oh_ * ow_, ow_, 1])
        _requant_store(kc, acc, y, out, xs, ws, ys, yz, per_index(kc, ws, m))


@lowering("QMatMul")
def lower_qmatmul(kc: KernelContext) -> None:
    """numpy matmul semantics (1-D operands, broadcast batch dims); A's scale / zero point may
    be per row (M values), B's per column (N values)."""
    a, as_, az, bb, bs, bz, ys, yz, bias = (kc.inputs + [""] * 9)[:9]
    y = kc.outputs[0]
    b = kc.b
    sa, sb = kc.shape(a), kc.shape(bb)
    m_, k_ = (1, sa[0]) if len(sa) == 1 else (sa[-2], sa[-1])
    n_ = 1 if len(sb) == 1 else sb[-1]
    a_batch, b_batch = tuple(sa[:-2]), tuple(sb[:-2])
    batch = tuple(np.broadcast_shapes(a_batch, b_batch))
    strides = [[s * m_ * n_ for s in contiguous_strides(batch)],
               [s * m_ * k_ for s in broadcast_strides(a_batch, batch)],
               [s * k_ * n_ for s in broadcast_strides(b_batch, batch)]]
    dims, (ys_, as__, bs_) = collapse(batch, strides)
    zero = ir.Constant(I32, 0)
    with kc.nest(dims, "batch") as bi:
        yo, ao, bo = kc.linear(bi, ys_), kc.linear(bi, as__), kc.linear(bi, bs_)
        with kc.nest([m_, n_], "ij") as (i, j):
            a_zp = load_i32(kc, az, per_index(kc, az, i))
            b_zp = load_i32(kc, bz, per_index(kc, bz, j))

            def step(acc: ir.Value, idx: list[ir.Value], i: ir.Value = i, j: ir.Value = j,
                     a_zp: ir.Value = a_zp, b_zp: ir.Value = b_zp) -> ir.Value:
                (k,) = idx
                av = b.sub(load_i32(kc, a, b.add(ao, kc.linear([i, k], [k_, 1]))), a_zp)
                bv = b.sub(load_i32(kc, bb, b.add(bo, kc.linear([k, j], [n_, 1]))), b_zp)
                return b.add(acc, b.mul(av, bv))

            acc = fold(kc, [k_], zero, step, "k")
            if bias:
                acc = b.add(acc, load_i32(kc, bias, j))
            _requant_store(kc, acc, y, b.add(yo, kc.linear([i, j], [n_, 1])), as_, bs, ys, yz,
                           per_index(kc, bs, j), per_index(kc, as_, i))

"""InstanceNormalization, GroupNormalization and LayerNormalization.

All three normalize contiguous rows: (n, c) planes, (n, group) blocks, or the trailing dims
from `axis`. Statistics use two passes (mean, then the mean of squared deviations), which
stays accurate when |mean| is large compared to the spread (E[x^2] - E[x]^2 does not).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from edgec.codegen import mathfn as m
from edgec.codegen.broadcast import broadcast_strides, collapse, contiguous_strides
from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.types import llvm_type
from edgec.kernels.generic.reduce import fold, offset


def row_stats(kc: KernelContext, x: str, base: ir.Value, n: int) -> tuple[ir.Value, ir.Value]:
    """(mean, 1/sqrt(var + epsilon)) of x[base : base + n]."""
    b = kc.b
    ty = llvm_type(kc.dtype(x))
    zero = ir.Constant(ty, 0.0)
    inv_n = ir.Constant(ty, 1.0 / max(n, 1))
    # Sum x - x[0] rather than x: with a large common offset (|mean| >> std) the shifted terms
    # are small and exact, so the float32 sum does not lose the digits the variance needs.
    shift = kc.load(x, base)
    s = fold(kc, [n], zero, lambda a, i: m.fadd(b, a, m.fsub(b, kc.load(x, offset(kc, base, i[0])), shift)))
    mean = m.fadd(b, shift, m.fmul(b, s, inv_n))

    def sq_dev(a: ir.Value, i: list[ir.Value]) -> ir.Value:
        d = m.fsub(b, kc.load(x, offset(kc, base, i[0])), mean)
        return m.fadd(b, a, m.fmul(b, d, d))

    var = m.fmul(b, fold(kc, [n], zero, sq_dev), inv_n)
    eps = ir.Constant(ty, float(np.asarray(kc.attrs["epsilon"], dtype=np.float32)))
    rstd = m.fdiv(b, ir.Constant(ty, 1.0), m.sqrt(b, m.fadd(b, var, eps)))
    return mean, rstd


@lowering("InstanceNormalization", "GroupNormalization")
def lower_group_norm(kc: KernelContext) -> None:
    """Instance norm is group norm with one channel per group."""
    b = kc.b
    x, scale, bias = kc.inputs[:3]
    y = kc.outputs[0]
    shape = kc.shape(x)
    batch, channels = shape[0], shape[1]
    groups = kc.attrs.get("num_groups", channels)
    cpg = channels // groups
    plane = int(np.prod(shape[2:], dtype=np.int64))
    with kc.nest([batch, groups], "ng") as (ni, g):
        base = kc.linear([ni, g], [groups * cpg * plane, cpg * plane])
        mean, rstd = row_stats(kc, x, base, cpg * plane)
        with kc.loop(cpg, name="c") as cc:
            ch = kc.linear([g, cc], [cpg, 1])
            k = m.fmul(b, kc.load(scale, ch), rstd)
            shift = kc.load(bias, ch)
            cbase = offset(kc, base, kc.linear([cc], [plane]))
            with kc.loop(plane, name="s") as s:
                i = offset(kc, cbase, s)
                kc.store(y, i, m.fadd(b, m.fmul(b, m.fsub(b, kc.load(x, i), mean), k), shift))


@lowering("LayerNormalization")
def lower_layer_norm(kc: KernelContext) -> None:
    b = kc.b
    x = kc.inputs[0]
    scale = kc.inputs[1] if len(kc.inputs) > 1 and kc.inputs[1] else None
    bias = kc.inputs[2] if len(kc.inputs) > 2 and kc.inputs[2] else None
    shape, axis = kc.shape(x), kc.attrs["axis"]
    rows = int(np.prod(shape[:axis], dtype=np.int64))
    norm_shape = shape[axis:]
    n = int(np.prod(norm_shape, dtype=np.int64))
    operands = [o for o in (scale, bias) if o]
    dims, strides = collapse(norm_shape, [contiguous_strides(norm_shape)]
                             + [broadcast_strides(kc.shape(o), norm_shape) for o in operands])
    st = dict(zip(operands, strides[1:]))
    with kc.loop(rows, name="row") as r:
        base = kc.linear([r], [n])
        mean, rstd = row_stats(kc, x, base, n)
        for out, v in zip(kc.outputs[1:3], (mean, rstd)):  # optional Mean / InvStdDev
            kc.store(out, r, _to(b, v, llvm_type(kc.dtype(out))))
        with kc.nest(dims, "p") as idx:
            i = offset(kc, base, kc.linear(idx, strides[0]))
            v = m.fmul(b, m.fsub(b, kc.load(x, i), mean), rstd)
            if scale:
                v = m.fmul(b, v, kc.load(scale, kc.linear(idx, st[scale])))
            if bias:
                v = m.fadd(b, v, kc.load(bias, kc.linear(idx, st[bias])))
            kc.store(kc.outputs[0], i, v)


def _to(b: ir.IRBuilder, v: ir.Value, ty: ir.Type) -> ir.Value:
    if v.type == ty:
        return v
    return b.fpext(v, ty) if isinstance(ty, ir.DoubleType) else b.fptrunc(v, ty)

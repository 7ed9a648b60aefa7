"""MaxPool and AveragePool (2-D; 1-D arrives as H=1), with the Conv kernel's loop structure.

Each output row is the accumulator; the innermost loop runs over output columns. Windows are
clipped at the input edge through compile-time tables (no branch per element). AveragePool's
divisor is separable: (valid rows of the window) x (valid columns), where "valid" means inside
the input (count_include_pad=0) or inside the padded input (count_include_pad=1); either way a
window is clipped at the end of the padded input, which is what ceil_mode windows need.
A window covering a whole unpadded plane (global pooling) is a plain contiguous reduction.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from llvmlite import ir

from edgec.codegen import mathfn as m
from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.mathfn import FM
from edgec.codegen.types import is_float, is_signed
from edgec.kernels.generic.conv import (
    Tables,
    as_nchw,
    fill_row,
    span,
)


def _lowest(dtype: np.dtype) -> float | int:
    """Max-pool identity: the lowest finite value (onnxruntime's numeric_limits::lowest)."""
    return float(np.finfo(dtype).min) if is_float(dtype) else int(np.iinfo(dtype).min)


def _combine(kc: KernelContext, dtype: np.dtype) -> Callable[[ir.Value, ir.Value], ir.Value]:
    b = kc.b
    if kc.node.op == "AveragePool":
        return lambda acc, v: b.fadd(acc, v, flags=FM)
    if is_float(dtype):
        return lambda acc, v: m.fmax(b, v, acc)  # a NaN in the window is skipped, like onnxruntime
    cmp = b.icmp_signed if is_signed(dtype) else b.icmp_unsigned
    return lambda acc, v: b.select(cmp(">", v, acc), v, acc)


def nan_if_empty(b: ir.IRBuilder, acc: ir.Value, dtype: np.dtype) -> ir.Value:
    """Float max pooling skips NaN (one maxps per tap); a window of only NaN leaves the identity,
    which must read NaN as in onnxruntime. Once per output, not per tap."""
    if not is_float(dtype):
        return acc
    return b.select(b.fcmp_ordered("==", acc, m.c(acc, _lowest(dtype))), m.c(acc, float("nan")), acc)


def _counts(n_out: int, n_in: int, stride: int, pad: int, pad_end: int, dil: int, k: int,
            include_pad: bool) -> list[int]:
    """Window taps per output position counted by AveragePool's divisor."""
    lo, hi = (-pad, n_in + pad_end) if include_pad else (0, n_in)
    spans = [span(o * stride - pad, dil, k, lo, hi) for o in range(n_out)]
    return [end - start for start, end in spans]


def _global_pool(kc: KernelContext, x: str, y: str, planes: int, size: int) -> None:
    """One contiguous reduction per plane; the accumulator lives in an alloca that mem2reg
    turns into a register, so the reduction vectorizes (fast-math flags on the adds)."""
    b, dtype = kc.b, kc.dtype(x)
    combine = _combine(kc, dtype)
    with b.goto_entry_block():
        acc = b.alloca(kc.const(dtype, 0).type, name="acc")
    init = kc.const(dtype, 0.0 if kc.node.op == "AveragePool" else _lowest(dtype))
    with kc.loop(planes, "p") as p:
        b.store(init, acc)
        base = kc.linear([p], [size])
        with kc.loop(size, "i") as i:
            b.store(combine(b.load(acc), kc.load(x, b.add(base, i))), acc)
        r = b.load(acc)
        if kc.node.op == "AveragePool":
            r = b.fmul(r, kc.const(dtype, 1.0 / size), flags=FM)
        else:
            r = nan_if_empty(b, r, dtype)
        kc.store(y, p, r)


@lowering("MaxPool", "AveragePool")
def lower_pool(kc: KernelContext) -> None:
    x, y = kc.inputs[0], kc.outputs[0]
    n_, c_, h_, w_ = as_nchw(kc.shape(x))
    _, _, oh_, ow_ = as_nchw(kc.shape(y))
    kh_, kw_ = kc.attrs["kernel"]
    sh, sw = kc.attrs["strides"]
    pt, pl, pb, pr = kc.attrs["pads"]
    dh, dw = kc.attrs.get("dilations", [1, 1])
    dtype = kc.dtype(x)
    avg = kc.node.op == "AveragePool"
    if (oh_, ow_, kh_, kw_) == (1, 1, h_, w_) and not any(kc.attrs["pads"]) and (dh, dw) == (1, 1):
        _global_pool(kc, x, y, n_ * c_, h_ * w_)
        return
    b = kc.b
    t = Tables(kc)
    kh_lo, kh_hi, ow_lo, ow_hi = t.windows((oh_, ow_), (h_, w_), (sh, sw), (pt, pl), (dh, dw), (kh_, kw_))
    combine = _combine(kc, dtype)
    if avg:
        inc = bool(kc.attrs.get("count_include_pad", 0))
        ch = _counts(oh_, h_, sh, pt, pb, dh, kh_, inc)
        cw = _counts(ow_, w_, sw, pl, pr, dw, kw_, inc)
        # 1/count per row and column; an empty window (only possible with huge pads) gives 0
        inv_h = kc.table(np.array([1.0 / v if v else 0.0 for v in ch], dtype), "invh")
        inv_w = kc.table(np.array([1.0 / v if v else 0.0 for v in cw], dtype), "invw")
    init = kc.const(dtype, 0.0 if avg else _lowest(dtype))

    with kc.loop(n_ * c_, "p") as p, kc.loop(oh_, "oh") as oh:
        yrow = kc.linear([p, oh], [oh_ * ow_, ow_])
        fill_row(kc, y, yrow, ow_, init)
        with kc.loop(t.at(kh_hi, oh), "kh", start=t.at(kh_lo, oh)) as kh:
            xrow = kc.linear([p, oh, kh], [h_ * w_, sh * w_, dh * w_], offset=-pt * w_ - pl)
            with kc.loop(kw_, "kw") as kw:
                xoff = kc.linear([xrow, kw], [1, dw])
                with kc.loop(t.at(ow_hi, kw), "ow", start=t.at(ow_lo, kw)) as ow:
                    yi = b.add(yrow, ow)
                    kc.store(y, yi, combine(kc.load(y, yi), kc.load(x, kc.linear([xoff, ow], [1, sw]))))
        if not avg and is_float(dtype):
            with kc.loop(ow_, "nan") as ow:
                yi = b.add(yrow, ow)
                kc.store(y, yi, nan_if_empty(b, kc.load(y, yi), dtype))
        if avg:
            rh = b.load(b.gep(inv_h, [oh], inbounds=True))
            with kc.loop(ow_, "div") as ow:
                yi = b.add(yrow, ow)
                scale = b.fmul(rh, b.load(b.gep(inv_w, [ow], inbounds=True)), flags=FM)
                kc.store(y, yi, b.fmul(kc.load(y, yi), scale, flags=FM))

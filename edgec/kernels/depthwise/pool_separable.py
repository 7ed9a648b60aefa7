"""Max pooling as two 1-D passes (rows, then columns) for stride-1 windows that are mostly
border: YOLO's SPP pools 9x9 and 13x13 windows over a 13x13 map, where no output has a window
inside the input. The unrolled border code of the direct kernel (edgec/kernels/depthwise/lower.py)
grew with k^2 taps per output, k^4 in all: one 13x13 pool was 5 s of a 19 s build. Here each
pass is a runtime loop with the valid tap range computed per position, and max is separable,
so a k x k window costs 2k maxes instead of k^2.

The row maxima of one plane live in a stack buffer (at most `MAX_BUFFER_BYTES`). NaN handling is
the direct kernel's: a NaN never wins a max and a window of only NaN reads NaN."""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from edgec.codegen import mathfn
from edgec.codegen.activations import apply_activation
from edgec.codegen.kernel import KernelContext
from edgec.codegen.types import llvm_type
from edgec.kernels.depthwise.windows import interior
from edgec.kernels.generic.pool import nan_if_empty

MAX_BUFFER_BYTES = 32 << 10
BORDER_TAP_BUDGET = 4096  # unrolled border taps above which the direct kernel is not used


def use_separable(kc: KernelContext) -> bool:
    x, y = kc.inputs[0], kc.outputs[0]
    _, _, h_, w_ = kc.shape(x)
    _, _, oh_, ow_ = kc.shape(y)
    kh_, kw_ = kc.attrs["kernel"]
    if kc.node.op != "MaxPoolDirect" or list(kc.attrs["strides"]) != [1, 1] or list(kc.attrs["dilations"]) != [1, 1]:
        return False
    if h_ * ow_ * kc.dtype(x).itemsize > MAX_BUFFER_BYTES:
        return False
    pt, pl, _, _ = kc.attrs.get("pads", [0, 0, 0, 0])
    oh_lo, oh_hi = interior(oh_, h_, 1, pt, 1, kh_)
    ow_lo, ow_hi = interior(ow_, w_, 1, pl, 1, kw_)
    border = oh_ * ow_ - (oh_hi - oh_lo) * (ow_hi - ow_lo)
    return border * kh_ * kw_ > BORDER_TAP_BUDGET


def lower_separable_max_pool(kc: KernelContext) -> None:
    x, y = kc.inputs[0], kc.outputs[0]
    n_, c_, h_, w_ = kc.shape(x)
    _, _, oh_, ow_ = kc.shape(y)
    kh_, kw_ = kc.attrs["kernel"]
    pt, pl, _, _ = kc.attrs.get("pads", [0, 0, 0, 0])
    dt = kc.dtype(x)
    b = kc.b
    ety = llvm_type(dt)
    integer = dt.kind in "iu"
    lowest = kc.const(dt, int(np.iinfo(dt).min) if integer else float(np.finfo(np.float32).min))
    acc_p = b.alloca(ety, name="acc")  # in the entry block: promoted to a register
    rows = b.bitcast(b.alloca(ir.ArrayType(ety, h_ * ow_), name="rowmax"), ety.as_pointer())

    def bigger(acc: ir.Value, v: ir.Value) -> ir.Value:
        if integer:
            gt = b.icmp_signed(">", v, acc) if dt.kind == "i" else b.icmp_unsigned(">", v, acc)
            return b.select(gt, v, acc)
        return mathfn.fmax(b, v, acc)

    def clamp_lo(v: ir.Value) -> ir.Value:
        return b.select(b.icmp_signed("<", v, kc.idx(0)), kc.idx(0), v)

    def clamp_hi(v: ir.Value, hi: int) -> ir.Value:
        return b.select(b.icmp_signed(">", v, kc.idx(hi)), kc.idx(hi), v)

    def window_max(o: ir.Value, pad: int, k: int, n_in: int, load) -> ir.Value:  # noqa: ANN001
        """max over the taps t in [0, k) with 0 <= o - pad + t < n_in of load(o - pad + t)."""
        lo = clamp_lo(b.sub(kc.idx(pad), o))
        hi = clamp_hi(b.sub(kc.idx(n_in + pad), o), k)
        b.store(lowest, acc_p)
        with kc.loop(hi, "t", start=lo) as t:
            b.store(bigger(b.load(acc_p), load(b.add(b.sub(o, kc.idx(pad)), t))), acc_p)
        return b.load(acc_p)

    c0, c1 = kc.task_range(c_)  # threads split the channels
    with kc.loop(n_, "n") as n, kc.loop(c1, "c", start=c0) as c:
        nc = b.add(b.mul(n, kc.idx(c_)), c)
        plane, oplane = b.mul(nc, kc.idx(h_ * w_)), b.mul(nc, kc.idx(oh_ * ow_))
        with kc.loop(h_, "ih") as ih, kc.loop(ow_, "ow") as ow:
            src = b.add(plane, b.mul(ih, kc.idx(w_)))
            m = window_max(ow, pl, kw_, w_, lambda i, src=src: kc.load(x, b.add(src, i)))
            b.store(m, b.gep(rows, [b.add(b.mul(ih, kc.idx(ow_)), ow)], inbounds=True))
        with kc.loop(oh_, "oh") as oh, kc.loop(ow_, "ow2") as ow:
            m = window_max(oh, pt, kh_, h_,
                           lambda i, ow=ow: b.load(b.gep(rows, [b.add(b.mul(i, kc.idx(ow_)), ow)], inbounds=True)))
            m = apply_activation(b, nan_if_empty(b, m, dt), kc.attrs.get("activation"))
            kc.store(y, b.add(oplane, b.add(b.mul(oh, kc.idx(ow_)), ow)), m)

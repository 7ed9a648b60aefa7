"""Direct 2-D transposed convolution, output-stationary like the Conv kernel.

Output row oh receives input row ih through kernel row kh when oh = ih*sh - pt + kh*dh. The
(kh, ih) pairs of every output row are listed at compile time in a CSR table, so the kernel
needs no division or modulo. Within a row, kernel column kw scatters input column iw to output
column iw*sw - pl + kw*dw; the innermost loop runs over iw (contiguous in the input).
"""

from __future__ import annotations

from llvmlite import ir

from edgec.codegen.kernel import KernelContext, lowering
from edgec.kernels.generic.conv import (
    Tables,
    activation_row,
    as_nchw,
    bias_value,
    fill_row,
    mul_add,
    span,
)


def row_pairs(n_out: int, n_in: int, stride: int, pad: int, dil: int, k: int) -> tuple[list[int], list[int], list[int]]:
    """CSR lists: for output row o, entries start[o]..start[o+1] hold (kernel row, input row)."""
    start, taps, rows = [0], [], []
    for o in range(n_out):
        for t in range(k):
            num = o + pad - t * dil
            if num % stride == 0 and 0 <= num // stride < n_in:
                taps.append(t)
                rows.append(num // stride)
        start.append(len(taps))
    return start, taps, rows


@lowering("ConvTranspose")
def lower_conv_transpose(kc: KernelContext) -> None:
    x, w, y = kc.inputs[0], kc.inputs[1], kc.outputs[0]
    n_, c_, h_, w_ = as_nchw(kc.shape(x))
    _, m_, oh_, ow_ = as_nchw(kc.shape(y))
    _, mg, kh_, kw_ = as_nchw(kc.shape(w))  # weights are (C, M/group, KH, KW)
    sh, sw = kc.attrs["strides"]
    pt, pl = kc.attrs["pads"][:2]
    dh, dw = kc.attrs["dilations"]
    groups = int(kc.attrs["group"])
    cg = c_ // groups
    b = kc.b
    t = Tables(kc)
    start, taps, rows = row_pairs(oh_, h_, sh, pt, dh, kh_)
    t_start, t_kh, t_ih = t.make(start, "start"), t.make(taps, "kh"), t.make(rows, "ih")
    # input columns iw whose output column iw*sw - pl + kw*dw lands in [0, ow_)
    cols = [span(k * dw - pl, sw, w_, 0, ow_) for k in range(kw_)]
    iw_lo, iw_hi = t.make([r[0] for r in cols], "iwlo"), t.make([r[1] for r in cols], "iwhi")

    with kc.loop(n_, "n") as n, kc.loop(groups, "g") as g, kc.loop(mg, "m") as mm:
        m = kc.linear([g, mm], [mg, 1])
        bias = bias_value(kc, m, y)
        with kc.loop(oh_, "oh") as oh:
            yrow = kc.linear([n, m, oh], [m_ * oh_ * ow_, oh_ * ow_, ow_])
            fill_row(kc, y, yrow, ow_, bias)
            first, last = t.at(t_start, oh), t.at(t_start, b.add(oh, kc.idx(1)))
            with kc.loop(cg, "ic") as ic:
                c = kc.linear([g, ic], [cg, 1])
                with kc.loop(last, "j", start=first) as j:
                    kh, ih = t.at(t_kh, j), t.at(t_ih, j)
                    xrow = kc.linear([n, c, ih], [c_ * h_ * w_, h_ * w_, w_])
                    wrow = kc.linear([c, mm, kh], [mg * kh_ * kw_, kh_ * kw_, kw_])
                    with kc.loop(kw_, "kw") as kw:
                        wv = kc.load(w, b.add(wrow, kw))
                        ybase: ir.Value = kc.linear([yrow, kw], [1, dw], offset=-pl)
                        with kc.loop(t.at(iw_hi, kw), "iw", start=t.at(iw_lo, kw)) as iw:
                            mul_add(kc, y, kc.linear([ybase, iw], [1, sw]), wv, x, b.add(xrow, iw))
            activation_row(kc, y, yrow, ow_)

"""Direct 2-D convolution (1-D convs arrive as H=1), with bias and a fused activation epilogue.

Loop order: n, group, output channel, output row; the output row is the accumulator (it stays in
L1) and the innermost loop runs over output columns, contiguous in the output and strided by the
stride in the input, so it vectorizes. Padding costs no branch per MAC: which kernel rows land
inside the input is a per-output-row table, and which output columns a kernel column can reach
is a per-kernel-column table, both computed here at compile time. Depthwise convolutions (one
input channel per group) drop the channel loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from llvmlite import ir

from edgec.codegen.activations import apply_activation
from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.mathfn import FM


def as_nchw(shape: Sequence[int]) -> tuple[int, int, int, int]:
    """Rank-3 tensors of 1-D ops (N, C, W) are viewed as (N, C, 1, W)."""
    if len(shape) == 3:
        return int(shape[0]), int(shape[1]), 1, int(shape[2])
    if len(shape) == 4:
        return int(shape[0]), int(shape[1]), int(shape[2]), int(shape[3])
    raise NotImplementedError(f"2-D kernel on a rank-{len(shape)} tensor")


def span(base: int, step: int, count: int, lo: int, hi: int) -> tuple[int, int]:
    """[i0, i1) of the i in range(count) with lo <= base + i*step < hi (an empty set is (0, 0)).
    Closed form, so big 1-D convolutions do not cost a Python loop per (output, tap)."""
    i0 = max(0, -((base - lo) // step))  # ceil((lo - base) / step)
    i1 = min(count, (hi - 1 - base) // step + 1)
    return (i0, i1) if i0 < i1 else (0, 0)


def taps_per_output(n_out: int, n_in: int, stride: int, pad: int, dil: int, k: int) -> list[tuple[int, int]]:
    """For each output position o: the range of kernel taps t whose input o*stride-pad+t*dil is
    inside [0, n_in)."""
    return [span(o * stride - pad, dil, k, 0, n_in) for o in range(n_out)]


def outputs_per_tap(n_out: int, n_in: int, stride: int, pad: int, dil: int, k: int) -> list[tuple[int, int]]:
    """For each kernel tap t: the range of output positions whose input is inside [0, n_in)."""
    return [span(t * dil - pad, stride, n_out, 0, n_in) for t in range(k)]


class Tables:
    """Compile-time index tables as private constant arrays of pointer-sized ints."""

    def __init__(self, kc: KernelContext):
        self.kc = kc
        self.dtype = np.int32 if kc.isize.width == 32 else np.int64

    def make(self, values: Sequence[int], hint: str) -> ir.Value:
        data = np.asarray(list(values) or [0], dtype=self.dtype)
        return self.kc.table(data, hint)

    def windows(self, out: tuple[int, int], size: tuple[int, int], strides: Sequence[int], pads: Sequence[int],
                dilations: Sequence[int], kernel: Sequence[int]) -> tuple[ir.Value, ...]:
        """(kh_lo, kh_hi, ow_lo, ow_hi): per output row the valid kernel rows, per kernel
        column the output columns whose input is inside the map (no branch per element)."""
        rows = taps_per_output(out[0], size[0], strides[0], pads[0], dilations[0], kernel[0])
        cols = outputs_per_tap(out[1], size[1], strides[1], pads[1], dilations[1], kernel[1])
        return (self.make([r[0] for r in rows], "khlo"), self.make([r[1] for r in rows], "khhi"),
                self.make([c[0] for c in cols], "owlo"), self.make([c[1] for c in cols], "owhi"))

    def at(self, table: ir.Value, i: ir.Value) -> ir.Value:
        return self.kc.b.load(self.kc.b.gep(table, [i], inbounds=True))


def mul_add(kc: KernelContext, acc_name: str, acc_idx: ir.Value, w: ir.Value, src: str,
            src_idx: ir.Value) -> None:
    """acc[acc_idx] += w * src[src_idx] with fast-math flags (contracts to FMA, vectorizes)."""
    b = kc.b
    prod = b.fmul(w, kc.load(src, src_idx), flags=FM)
    kc.store(acc_name, acc_idx, b.fadd(kc.load(acc_name, acc_idx), prod, flags=FM))


def fill_row(kc: KernelContext, name: str, base: ir.Value, n: int, v: ir.Value) -> None:
    with kc.loop(n, "init") as i:
        kc.store(name, kc.b.add(base, i), v)


def activation_row(kc: KernelContext, name: str, base: ir.Value, n: int) -> None:
    act = kc.attrs.get("activation")
    if act is None:
        return
    with kc.loop(n, "act") as i:
        idx = kc.b.add(base, i)
        kc.store(name, idx, apply_activation(kc.b, kc.load(name, idx), act))


def bias_value(kc: KernelContext, m: ir.Value, out: str) -> ir.Value:
    bias = kc.inputs[2] if len(kc.inputs) > 2 and kc.inputs[2] else None
    return kc.load(bias, m) if bias else kc.const(kc.dtype(out), 0.0)


@lowering("Conv")
def lower_conv(kc: KernelContext) -> None:
    x, w, y = kc.inputs[0], kc.inputs[1], kc.outputs[0]
    n_, c_, h_, w_ = as_nchw(kc.shape(x))
    _, m_, oh_, ow_ = as_nchw(kc.shape(y))
    _, cg, kh_, kw_ = as_nchw(kc.shape(w))
    sh, sw = kc.attrs["strides"]
    pt, pl = kc.attrs["pads"][:2]
    dh, dw = kc.attrs["dilations"]
    groups = int(kc.attrs["group"])
    mg = m_ // groups
    b = kc.b
    t = Tables(kc)
    kh_lo, kh_hi, ow_lo, ow_hi = t.windows((oh_, ow_), (h_, w_), (sh, sw), (pt, pl), (dh, dw), (kh_, kw_))

    with kc.loop(n_, "n") as n, kc.loop(groups, "g") as g, kc.loop(mg, "m") as mm:
        m = kc.linear([g, mm], [mg, 1])
        bias = bias_value(kc, m, y)
        with kc.loop(oh_, "oh") as oh:
            yrow = kc.linear([n, m, oh], [m_ * oh_ * ow_, oh_ * ow_, ow_])
            fill_row(kc, y, yrow, ow_, bias)

            def one_channel(ic: ir.Value | None) -> None:
                c = kc.linear([g] if ic is None else [g, ic], [cg] if ic is None else [cg, 1])
                wch = kc.linear([m] if ic is None else [m, ic], [cg * kh_ * kw_] if ic is None
                                else [cg * kh_ * kw_, kh_ * kw_])
                with kc.loop(t.at(kh_hi, oh), "kh", start=t.at(kh_lo, oh)) as kh:
                    # input row ih = oh*sh - pt + kh*dh; columns are shifted by -pl
                    xrow = kc.linear([n, c, oh, kh], [c_ * h_ * w_, h_ * w_, sh * w_, dh * w_],
                                     offset=-pt * w_ - pl)
                    wrow = kc.linear([wch, kh], [1, kw_])
                    with kc.loop(kw_, "kw") as kw:
                        wv = kc.load(w, b.add(wrow, kw))
                        xoff = kc.linear([xrow, kw], [1, dw])
                        with kc.loop(t.at(ow_hi, kw), "ow", start=t.at(ow_lo, kw)) as ow:
                            mul_add(kc, y, b.add(yrow, ow), wv, x, kc.linear([xoff, ow], [1, sw]))

            if cg == 1:  # depthwise (and any one-channel-per-group conv): no channel loop
                one_channel(None)
            else:
                with kc.loop(cg, "ic") as ic:
                    one_channel(ic)
            activation_row(kc, y, yrow, ow_)

"""Direct convolution vectorized across output channels, for small feature maps (7x7, 14x14)
where a row holds too few columns to fill vectors. A tile is MP output pixels (flattened over the
plane, so tiles may cross rows) x NRV vectors of output channels: each reduction step broadcasts
one input scalar per pixel and loads NRV packed weight vectors ([oc_block][ic][kh][kw][NR]).
Stores scatter lanes into the NCHW output once per tile, after the whole reduction.

Pointwise convs may read their input as panels ([n][tile][ic][MP], `PackPanels` below, attr
`panels`): a tile's reduction then walks one contiguous strip (MP floats per channel) instead of
touching a fresh cache line per channel at the plane stride, so the strip and the weight block
both stay in L1 (MobileNetV2's 320 -> 1280 at 7x7: 1.22x -> see direct_conv.panel_width)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from llvmlite import ir

from edgec.codegen.common import vector_activation
from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.loops import for_range_carried, opaque
from edgec.codegen.mathfn import FM
from edgec.codegen.types import F16, I32, llvm_type
from edgec.codegen.vector import Vec, concat_vectors
from edgec.kernels.generic.reduce import entry_alloca


@lowering("ConvOcvec")
def lower_conv_ocvec(kc: KernelContext) -> None:
    x, wp, bias = kc.inputs[:3]
    y = kc.outputs[0]
    n_, c_, h_, w_ = kc.shape(x)
    _, m_, oh_, ow_ = kc.shape(y)
    kh_, kw_ = kc.attrs["kernel"]
    sh, sw = kc.attrs["strides"]
    dh, dw = kc.attrs["dilations"]
    sched = kc.attrs["schedule"]
    mp, nrv, lanes = sched["mp"], sched["nrv"], sched["lanes"]
    nr = nrv * lanes
    act = kc.attrs.get("activation")
    residual = kc.inputs[3] if kc.attrs.get("residual") else None
    vec = Vec(kc.b, lanes, llvm_type(kc.dtype(y)))  # fp32, or fp16 (`--precision fp16`)
    b = kc.b
    plane = oh_ * ow_
    panels = bool(kc.attrs.get("panels"))
    if panels:  # x is [n][tile][ic][mp]; c_ is the channel count of the original input
        n_, tiles_, c_, _ = kc.shape(x)
        kh_ = kw_ = 1

    # ARM: one kernel tap per iteration of a loop (offsets from a table; an opaque trip count, or
    # LLVM unrolls it again). With the taps unrolled, LLVM loads the next taps' weights and pairs
    # the input loads of adjacent taps (ldp s, s) early, and the aarch64 6x4 tile spilled ~20 q
    # registers per channel. x86 keeps them unrolled: no spills there, and the loop measured
    # 1.02-1.09x slower on AVX2 (3x3 stride-2 and 14x14 / 7x7 convs, paired rounds).
    tap_loop = kc.target.arch != "x86_64" and kh_ * kw_ > 1
    tap_off = kc.table(np.array([kh * dh * w_ + kw * dw for kh in range(kh_) for kw in range(kw_)],
                                np.int64 if kc.isize.width == 64 else np.int32), "taps") if tap_loop else None

    def taps(acc: list[ir.Value], x_at: Callable[[ir.Value], ir.Value], w_at: ir.Value,
             bases: list[ir.Value]) -> list[ir.Value]:
        """One tap: NRV weight vectors, one input broadcast per pixel (at x_at(its base)), MP x
        NRV FMAs."""
        acc = list(acc)
        wv = [vec.load(kc.gep(wp, b.add(w_at, kc.idx(v * lanes)))) for v in range(nrv)]
        for i, base in enumerate(bases):
            xb = vec.splat(kc.load(x, x_at(base)))
            for v in range(nrv):
                acc[i * nrv + v] = vec.fma(xb, wv[v], acc[i * nrv + v])
        return acc

    def tile(n: ir.Value, ocb: ir.Value, p0: ir.Value, count: int) -> None:
        bases = []
        for i in range(count):
            if panels:
                bases.append(kc.idx(i))
                continue
            p = b.add(p0, kc.idx(i))
            oh, ow = b.udiv(p, kc.idx(ow_)), b.urem(p, kc.idx(ow_))
            bases.append(b.add(b.mul(b.mul(oh, kc.idx(sh)), kc.idx(w_)), b.mul(ow, kc.idx(sw))))
        init = []
        for _ in range(count):
            for v in range(nrv):
                init.append(vec.load(kc.gep(bias, b.add(b.mul(ocb, kc.idx(nr)), kc.idx(v * lanes)))))
        with for_range_carried(b, c_, kc.isize, init, "ic") as loop:
            ic = loop.index
            acc = list(loop.values)
            if panels:
                t = b.add(b.mul(n, kc.idx(tiles_)), b.udiv(p0, kc.idx(mp)))
                x_ch = b.mul(b.add(b.mul(t, kc.idx(c_)), ic), kc.idx(mp))
            else:
                x_ch = b.mul(b.add(b.mul(n, kc.idx(c_)), ic), kc.idx(h_ * w_))
            w_ic = b.mul(b.add(b.mul(ocb, kc.idx(c_)), ic), kc.idx(kh_ * kw_ * nr))
            if tap_loop:
                with for_range_carried(b, opaque(b, kc.idx(kh_ * kw_)), kc.isize, acc, "tap") as tp:
                    x_tap = b.add(x_ch, b.load(b.gep(tap_off, [tp.index], inbounds=True)))
                    tp.next = taps(tp.values, lambda base, x_tap=x_tap: b.add(x_tap, base),
                                   b.add(w_ic, b.mul(tp.index, kc.idx(nr))), bases)
                loop.next = tp.values
            else:
                for kh in range(kh_):
                    for kw in range(kw_):
                        tap = kc.idx(kh * dh * w_ + kw * dw)
                        acc = taps(acc, lambda base, tap=tap, x_ch=x_ch: b.add(x_ch, b.add(base, tap)),
                                   b.add(w_ic, kc.idx((kh * kw_ + kw) * nr)), bases)
                loop.next = acc
        # The tile's pixels are consecutive in every output plane: per output channel, one
        # shuffle gathers its `count` values and one store writes them (a scalar store with a
        # bounds branch per value made the epilogue cost more than the reduction of a 3-channel
        # stem: 6 x 64 of them per 648 FMAs). fp16 (8 lanes): aarch64 makes those shuffles
        # `tbl` over consecutive register pairs, and LLVM allocated the loop's accumulators as
        # such pairs (8 spills per tap in the 6x4 tile); passing them through a stack slot
        # gives the shuffles registers of their own (tests/asm: no spills).
        sums = list(loop.values)
        if vec.ety == F16 and kc.target.arch == "aarch64":  # see the comment below
            sums = _through_stack(kc, vec, sums)
        for v in range(nrv):
            vals = [sums[i * nrv + v] for i in range(count)]
            if not residual:
                vals = [vector_activation(b, r, act, lanes) for r in vals]
            allv = concat_vectors(b, vals)
            for lane in range(lanes):
                oc = b.add(b.mul(ocb, kc.idx(nr)), kc.idx(v * lanes + lane))
                nxt = None
                if m_ % nr and (v * lanes + lane) >= m_ % nr:  # past M in the last block
                    ok, nxt = b.append_basic_block("st"), b.append_basic_block("nx")
                    b.cbranch(b.icmp_signed("<", oc, kc.idx(m_)), ok, nxt)
                    b.position_at_end(ok)
                dst = b.add(b.mul(b.add(b.mul(n, kc.idx(m_)), oc), kc.idx(plane)), p0)
                row = b.shuffle_vector(allv, allv, ir.Constant(ir.VectorType(I32, count),
                                                               [i * lanes + lane for i in range(count)]))
                ptr = b.bitcast(kc.gep(y, dst), row.type.as_pointer())
                if residual:  # fused residual Add, then the activation
                    res = b.load(b.bitcast(kc.gep(residual, dst), row.type.as_pointer()), align=vec.align)
                    row = vector_activation(b, b.fadd(row, res, flags=FM), act, count)
                b.store(row, ptr, align=vec.align)
                if nxt is not None:
                    b.branch(nxt)
                    b.position_at_end(nxt)

    full, rem = divmod(plane, mp)
    t0, t1 = kc.task_range(full)  # threads split the pixel tiles; the last one takes the tail
    last = kc.is_last_task()
    with kc.loop(n_, "n") as n, kc.loop(-(-m_ // nr), "ocb") as ocb:
        if full:
            with kc.loop(t1, "pt", start=t0) as pt:
                tile(n, ocb, b.mul(pt, kc.idx(mp)), mp)
        if rem:
            with b.if_then(last):
                tile(n, ocb, kc.idx(full * mp), rem)


def _through_stack(kc: KernelContext, vec: Vec, sums: list[ir.Value]) -> list[ir.Value]:
    """`sums` stored to a stack slot and loaded back through a pointer LLVM cannot see through
    (`opaque`): new values, so nothing the epilogue asks of their registers reaches the loop.
    A q-register store and load per accumulator, once per tile."""
    b = kc.b
    slot = entry_alloca(kc, vec.ty, len(sums))
    for k, a in enumerate(sums):
        b.store(a, b.gep(slot, [ir.Constant(I32, k)]), align=16)
    back = opaque(b, slot)
    return [b.load(b.gep(back, [ir.Constant(I32, k)]), align=16) for k in range(len(sums))]


@lowering("PackPanels")
def lower_pack_panels(kc: KernelContext) -> None:
    """x [n][c][plane] -> [n][tile][c][width]: each pixel tile's input as one contiguous strip
    (zero-filled past the plane's end). A plain copy, a few µs beside the conv it feeds."""
    x, y = kc.inputs[0], kc.outputs[0]
    n_, tiles_, c_, width = kc.shape(y)
    plane = kc.shape(x)[2] * kc.shape(x)[3]
    b = kc.b
    zero = kc.const(kc.dtype(y), 0)
    with kc.loop(n_ * tiles_, "t") as t, kc.loop(c_, "c") as c:
        n = b.udiv(t, kc.idx(tiles_))
        p0 = b.mul(b.urem(t, kc.idx(tiles_)), kc.idx(width))
        src = b.mul(b.add(b.mul(n, kc.idx(c_)), c), kc.idx(plane))
        dst = b.mul(b.add(b.mul(t, kc.idx(c_)), c), kc.idx(width))
        for i in range(width):
            p = b.add(p0, kc.idx(i))
            inside = b.icmp_unsigned("<", p, kc.idx(plane))
            safe = b.select(inside, p, kc.idx(0))
            kc.store(y, b.add(dst, kc.idx(i)), b.select(inside, kc.load(x, b.add(src, safe)), zero))

"""Register-blocked direct convolution for NCHW (groups == 1), the fp32 hot path.

The output is computed in tiles of MR output channels x NR = NRV*VL output columns of one row,
held in MR*NRV vector accumulators. The reduction runs over input channels (a runtime loop)
and, unrolled inside it, the KH*KW kernel taps: each tap loads NRV input vectors (contiguous for
stride 1, one wide load + deinterleave for stride 2) and broadcasts MR weights, packed at build
time in exactly that order ([oc_block][ic][kh][kw][MR]). Bias and the fused activation are the
epilogue. Padding was made explicit by the `prepare-direct-conv` pass (a Pad node in front), so
the kernel has no bounds checks; reads past a row's end in tail tiles land in the next row or in
the arena's slack and only feed lanes that are never stored.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from edgec.codegen.common import interleave, vector_activation
from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.loops import for_range_carried, opaque
from edgec.codegen.mathfn import FM
from edgec.codegen.types import I32, llvm_type
from edgec.codegen.vector import Vec
from edgec.kernels.conv_direct.tuning import DirectConvSchedule

MIN_CHAINS = 8  # independent FMA chains that keep two FMA pipes busy at 4-cycle latency


@lowering("ConvDirect")
def lower_conv_direct(kc: KernelContext) -> None:
    x, wp, bias = kc.inputs[:3]
    y = kc.outputs[0]
    n_, c_, h_, w_ = kc.shape(x)
    _, m_, oh_, ow_ = kc.shape(y)
    # A ConvTranspose whose kernel equals its stride (see edgec/kernels/conv_direct/deconv.py) is a 1x1
    # conv to M*FH*FW channels whose results are stored depth-to-space: row (m, fh, fw) of the
    # GEMM lands at output pixel (oh*FH + fh, ow*FW + fw) of channel m.
    fh, fw = kc.attrs.get("shuffle", (1, 1))
    m_, oh_, ow_ = m_ * fh * fw, oh_ // fh, ow_ // fw
    if kc.attrs.get("flatten"):  # 1x1 stride 1: the plane is one long row
        h_, w_, oh_, ow_ = 1, h_ * w_, 1, oh_ * ow_
    kh_, kw_ = kc.attrs["kernel"]
    sh, sw = kc.attrs["strides"]
    dh, dw = kc.attrs["dilations"]
    s = DirectConvSchedule(**kc.attrs["schedule"])
    mr, lanes = s.mr, s.lanes
    vec = Vec(kc.b, lanes, llvm_type(kc.dtype(y)))  # fp32, or fp16 (`--precision fp16`)
    b = kc.b
    act = kc.attrs.get("activation")
    nr = s.nrv * lanes
    residual = kc.inputs[3] if kc.attrs.get("residual") else None
    groups = kc.attrs.get("group", 1)  # grouped convs: blocks of each group packed one after another
    cg, mg = c_ // groups, m_ // groups
    ocb_count = -(-mg // mr)

    # K blocking (schedule knob "kc"): the reduction runs over blocks of kc input channels so the
    # input rows a tile reads stay in L1 while every output-channel block reuses them; partial
    # sums go through the output buffer between blocks (first block starts from the bias).
    kcb = int(kc.attrs["schedule"].get("kc") or cg)
    nkb = cg // kcb if cg % kcb == 0 and (fh, fw) == (1, 1) else 1
    kcb = cg // nkb

    def out_row_of(n: ir.Value, grp: ir.Value, ocb: ir.Value, oh: ir.Value, m: int) -> ir.Value:
        oc = b.add(b.mul(grp, kc.idx(mg)), b.add(b.mul(ocb, kc.idx(mr)), kc.idx(m)))
        return b.add(b.mul(b.add(b.mul(n, kc.idx(m_)), oc), kc.idx(oh_ * ow_)), b.mul(oh, kc.idx(ow_)))

    # armv7: the MR weights of a tap as lanes of vector loads (vmla.f32 by scalar, Vec.splats):
    # with dup-loaded broadcasts LLVM kept several live and the 4x3 tile spilled 2 accumulators
    # per channel; as lanes 4x3 and 6x2 fit (conv_direct/tuning.py tile_fits).
    by_lane = kc.target.arch == "armv7"
    # ARM: one kernel tap per iteration of a loop (offsets from a table, an opaque trip count
    # so LLVM does not unroll it again), as in ConvOcvec: with the taps unrolled LLVM loads
    # ahead across taps and aarch64 spilled (3x3 8 -> 32 at 56x56: 13 stack stores per channel
    # in the 4x3 tile, 13 in the 6x4 default's tail tile). x86 keeps them unrolled (no spills).
    tap_off = kc.table(np.array([kh * dh * w_ + kw * dw for kh in range(kh_) for kw in range(kw_)],
                                np.int64 if kc.isize.width == 64 else np.int32), "taps") \
        if kc.target.arch != "x86_64" and kh_ * kw_ > 1 else None
    up = int(kc.attrs.get("residual_upsample") or 1)  # the residual is a nearest-upsampled map

    def residual_vector(n: ir.Value, grp: ir.Value, ocb: ir.Value, oh: ir.Value, m: int, out_row: ir.Value,
                        col: ir.Value) -> ir.Value:
        if up == 1:
            return vec.load(kc.gep(residual, b.add(out_row, col)))
        # Nearest upsampling by `up` fused in (edgec/kernels/conv_direct/pack.py): pixel (oh, col)
        # reads (oh // up, col // up) of the small map; col is a multiple of the lanes, so one
        # load of lanes/up values and a duplicating shuffle. Flattened planes have rows of a
        # multiple of the lanes (the pass checks), so a vector never straddles two rows.
        oc = b.add(b.mul(grp, kc.idx(mg)), b.add(b.mul(ocb, kc.idx(mr)), kc.idx(m)))
        if kc.attrs.get("flatten"):
            real_w = kc.shape(y)[3]
            oh, col = b.udiv(col, kc.idx(real_w)), b.urem(col, kc.idx(real_w))
            rh, rw = kc.shape(y)[2] // up, real_w // up
        else:
            rh, rw = oh_ // up, ow_ // up
        src = b.add(b.mul(b.add(b.mul(b.add(b.mul(n, kc.idx(m_)), oc), kc.idx(rh)), b.udiv(oh, kc.idx(up))),
                          kc.idx(rw)), b.udiv(col, kc.idx(up)))
        part = vec.load(kc.gep(residual, src), lanes // up)
        return b.shuffle_vector(part, ir.Constant(part.type, ir.Undefined),
                                ir.Constant(ir.VectorType(I32, lanes), [i // up for i in range(lanes)]))

    def tile(n: ir.Value, grp: ir.Value, oh: ir.Value, ow0: ir.Value | int, ocb: ir.Value, width: int,
             kb: ir.Value | None = None) -> None:
        nrv = -(-width // lanes)
        gb = b.add(b.mul(grp, kc.idx(ocb_count)), ocb)  # block index over all groups
        base_w = kc.b.mul(gb, kc.idx(cg * kh_ * kw_ * mr))
        ow0_i = ow0 if isinstance(ow0, ir.Value) else kc.idx(ow0)
        first = None if kb is None else b.icmp_unsigned("==", kb, kc.idx(0))
        accs = []
        for m in range(mr):
            bv = vec.splat(kc.load(bias, b.add(b.mul(gb, kc.idx(mr)), kc.idx(m))))
            if first is not None:  # later K blocks continue from the partial sums in y
                row = out_row_of(n, grp, ocb, oh, m)
                bv_row = [b.select(first, bv, vec.load(kc.gep(y, b.add(row, b.add(ow0_i, kc.idx(v * lanes))))))
                          for v in range(nrv)]
                accs.append(bv_row)
            else:
                accs.append([bv] * nrv)
        ic_start = kc.idx(0) if kb is None else b.mul(kb, kc.idx(kcb))
        ow0_v = ow0 if isinstance(ow0, ir.Value) else kc.idx(ow0)

        def tap(cur: list[list[ir.Value]], start: ir.Value, woff: ir.Value) -> list[list[ir.Value]]:
            """One tap: NRV input vectors (from x[start]) x MR broadcast weights (wp[woff])."""
            cur = [list(r) for r in cur]
            xs = [vec.load_strided(kc.gep(x, b.add(start, kc.idx(v * lanes * sw))), sw) for v in range(nrv)]
            for m, wb in enumerate(vec.splats(kc.gep(wp, woff), mr, by_lane)):
                for v in range(nrv):
                    cur[m][v] = vec.fma(wb, xs[v], cur[m][v])
            return cur

        def step(ic: ir.Value, cur: list[list[ir.Value]]) -> list[list[ir.Value]]:
            """One input channel's taps: NRV input vectors x MR broadcast weights per tap."""
            x_ch = b.mul(b.add(b.mul(n, kc.idx(c_)), b.add(b.mul(grp, kc.idx(cg)), ic)), kc.idx(h_ * w_))
            w_ic = b.add(base_w, b.mul(ic, kc.idx(kh_ * kw_ * mr)))
            if tap_off is not None:  # ARM: a loop over the taps (see tap_off)
                corner = b.add(x_ch, b.add(b.mul(b.mul(oh, kc.idx(sh)), kc.idx(w_)), b.mul(ow0_v, kc.idx(sw))))
                with for_range_carried(b, opaque(b, kc.idx(kh_ * kw_)), kc.isize,
                                       [a for r in cur for a in r], "tap") as tp:
                    start = b.add(corner, b.load(b.gep(tap_off, [tp.index], inbounds=True)))
                    tp.next = [a for r in tap(unflat(tp.values), start, b.add(w_ic, b.mul(tp.index, kc.idx(mr))))
                               for a in r]
                return unflat(tp.values)
            for kh in range(kh_):
                row = b.add(x_ch, b.mul(b.add(b.mul(oh, kc.idx(sh)), kc.idx(kh * dh)), kc.idx(w_)))
                for kw in range(kw_):
                    start = b.add(row, b.add(b.mul(ow0_v, kc.idx(sw)), kc.idx(kw * dw)))
                    cur = tap(cur, start, b.add(w_ic, kc.idx((kh * kw_ + kw) * mr)))
            return cur

        def unflat(vals: list[ir.Value]) -> list[list[ir.Value]]:
            return [list(vals[m * nrv:(m + 1) * nrv]) for m in range(mr)]

        # Narrow tail tiles have too few accumulators to hide the FMA latency (each chain gets
        # one FMA per channel): interleave `split` independent sets over the channels, add them up.
        split = max(1, min(4, -(-MIN_CHAINS // (mr * nrv * kh_ * kw_)))) if mr * nrv < MIN_CHAINS else 1
        split = split if kcb >= 2 * split else 1
        sets = [accs] + [[[vec.zeros()] * nrv for _ in range(mr)] for _ in range(split - 1)]
        flat = [a for st in sets for row in st for a in row]
        per = mr * nrv
        with for_range_carried(b, kcb // split, kc.isize, flat, "ic") as loop:
            base_ic = b.add(ic_start, b.mul(loop.index, kc.idx(split)))
            nxt = []
            for k in range(split):
                nxt += [a for row in step(b.add(base_ic, kc.idx(k)), unflat(loop.values[k * per:(k + 1) * per]))
                        for a in row]
            loop.next = nxt
        total = unflat(loop.values[:per])
        for k in range(1, split):
            other = unflat(loop.values[k * per:(k + 1) * per])
            total = [[b.fadd(total[m][v], other[m][v]) for v in range(nrv)] for m in range(mr)]
        if kcb % split:
            done = kc.idx((kcb // split) * split)
            with for_range_carried(b, b.add(ic_start, kc.idx(kcb)), kc.isize, [a for row in total for a in row],
                                   "icr", start=b.add(ic_start, done)) as loop:
                loop.next = [a for row in step(loop.index, unflat(loop.values)) for a in row]
            total = unflat(loop.values)
        phis = total
        # After the loop the phis hold the sums (the loop exits from its header).
        if (fh, fw) != (1, 1):
            _store_shuffled(kc, vec, phis, n, oh, ow0, ocb, width, (fh, fw), m_)
            return
        final_bb = after_bb = None
        if kb is not None:  # not the last K block: store the raw partial sums
            final_bb, partial_bb = b.append_basic_block("final"), b.append_basic_block("partial")
            after_bb = b.append_basic_block("tiledone")
            b.cbranch(b.icmp_unsigned("==", kb, kc.idx(nkb - 1)), final_bb, partial_bb)
            b.position_at_end(partial_bb)
            for m in range(mr):
                ok_bb, skip_bb = b.append_basic_block("pst"), b.append_basic_block("pnx")
                b.cbranch(b.icmp_signed("<", b.add(b.mul(ocb, kc.idx(mr)), kc.idx(m)), kc.idx(mg)), ok_bb, skip_bb)
                b.position_at_end(ok_bb)
                row = out_row_of(n, grp, ocb, oh, m)
                for v in range(nrv):
                    vec.store_lanes(phis[m][v], kc.gep(y, b.add(row, b.add(ow0_i, kc.idx(v * lanes)))),
                                    min(lanes, width - v * lanes))
                b.branch(skip_bb)
                b.position_at_end(skip_bb)
            b.branch(after_bb)
            b.position_at_end(final_bb)
        for m in range(mr):
            oc_in_group = b.add(b.mul(ocb, kc.idx(mr)), kc.idx(m))
            valid = b.icmp_signed("<", oc_in_group, kc.idx(mg))
            store_bb = b.append_basic_block("store")
            next_bb = b.append_basic_block("next")
            b.cbranch(valid, store_bb, next_bb)
            b.position_at_end(store_bb)
            out_row = out_row_of(n, grp, ocb, oh, m)
            for v in range(nrv):
                col = b.add(ow0 if isinstance(ow0, ir.Value) else kc.idx(ow0), kc.idx(v * lanes))
                acc = phis[m][v]
                if residual:  # fused residual Add (before the activation, as the graph had it)
                    acc = b.fadd(acc, residual_vector(n, grp, ocb, oh, m, out_row, col), flags=FM)
                val = vector_activation(b, acc, act, lanes)
                count = min(lanes, width - v * lanes)
                vec.store_lanes(val, kc.gep(y, b.add(out_row, col)), count)
            b.branch(next_bb)
            b.position_at_end(next_bb)
        if after_bb is not None:
            b.branch(after_bb)
            b.position_at_end(after_bb)

    full, rem = divmod(ow_, nr)
    # Threads split output rows, or output-channel blocks when the plane is one row (1x1).
    if oh_ >= 2:
        (r0, r1), (c0, c1) = kc.task_range(oh_), (kc.idx(0), kc.idx(ocb_count))
    else:
        (r0, r1), (c0, c1) = (kc.idx(0), kc.idx(oh_)), kc.task_range(ocb_count)
    with kc.loop(n_, "n") as n, kc.loop(groups, "grp") as grp, kc.loop(r1, "oh", start=r0) as oh:
        cw = int(kc.attrs["schedule"].get("cw") or 0)
        if full and cw and full > cw:
            # Column chunks (knob "cw" tiles): within a chunk each output-channel block sweeps
            # the columns, so stores run along a few planes at a time instead of jumping across
            # all M planes per tile; the chunk's input columns stay in L2 for every block.
            nch, last = divmod(full, cw)
            with kc.loop(nch + (1 if last else 0), "chunk") as ch:
                t0 = b.mul(ch, kc.idx(cw))
                t1 = b.select(b.icmp_unsigned("<", ch, kc.idx(nch)), b.add(t0, kc.idx(cw)), kc.idx(full))
                kbs = kc.loop(nkb, "kb") if nkb > 1 else None
                kb = kbs.__enter__() if kbs else None
                with kc.loop(c1, "ocb", start=c0) as ocb, kc.loop(t1, "owt", start=t0) as owt:
                    tile(n, grp, oh, b.mul(owt, kc.idx(nr)), ocb, nr, kb)
                if kbs:
                    kbs.__exit__(None, None, None)
        elif full:
            with kc.loop(full, "owt") as owt:
                ow0 = b.mul(owt, kc.idx(nr))
                if nkb > 1:
                    with kc.loop(nkb, "kb") as kb, kc.loop(c1, "ocb", start=c0) as ocb:
                        tile(n, grp, oh, ow0, ocb, nr, kb)
                else:
                    with kc.loop(c1, "ocb", start=c0) as ocb:
                        tile(n, grp, oh, ow0, ocb, nr)
        if rem:
            if nkb > 1:
                with kc.loop(nkb, "kbr") as kb, kc.loop(c1, "ocbr", start=c0) as ocb:
                    tile(n, grp, oh, full * nr, ocb, rem, kb)
            else:
                with kc.loop(c1, "ocbr", start=c0) as ocb:
                    tile(n, grp, oh, full * nr, ocb, rem)


def _store_shuffled(kc: KernelContext, vec: Vec, phis: list[list[ir.Value]], n: ir.Value, oh: ir.Value,
                    ow0: ir.Value | int, ocb: ir.Value, width: int, factors: tuple[int, int],
                    gemm_rows: int) -> None:
    """Depth-to-space epilogue: the FW accumulator rows of one (m, fh) pair are interleaved into
    contiguous output columns, so every store is a full vector (no scatter)."""
    b, lanes, y = kc.b, vec.lanes, kc.outputs[0]
    fh, fw = factors
    _, m_out, oh_out, ow_out = kc.shape(y)
    act = kc.attrs.get("activation")
    mr = len(phis)
    ow0_v = ow0 if isinstance(ow0, ir.Value) else kc.idx(ow0)
    for m in range(0, mr, fw):
        row = b.add(b.mul(ocb, kc.idx(mr)), kc.idx(m))  # GEMM row of kw == 0
        store_bb, next_bb = b.append_basic_block("store"), b.append_basic_block("next")
        b.cbranch(b.icmp_signed("<", row, kc.idx(gemm_rows)), store_bb, next_bb)
        b.position_at_end(store_bb)
        ch = b.udiv(row, kc.idx(fh * fw))
        kh = b.urem(b.udiv(row, kc.idx(fw)), kc.idx(fh))
        out_row = b.mul(b.add(b.mul(b.add(b.mul(n, kc.idx(m_out)), ch), kc.idx(oh_out)),
                              b.add(b.mul(oh, kc.idx(fh)), kh)), kc.idx(ow_out))
        for v in range(len(phis[m])):
            vals = [vector_activation(b, phis[m + k][v], act, lanes) for k in range(fw)]
            col = b.mul(b.add(ow0_v, kc.idx(v * lanes)), kc.idx(fw))
            count = min(lanes, width - v * lanes) * fw
            for j, out in enumerate(interleave(b, vals, lanes)):
                if count > j * lanes:
                    vec.store_lanes(out, kc.gep(y, b.add(out_row, b.add(col, kc.idx(j * lanes)))),
                                    min(lanes, count - j * lanes))
        b.branch(next_bb)
        b.position_at_end(next_bb)

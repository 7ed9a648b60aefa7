"""`WindowGemm(x, Wp, bias)` (spec.py): per block of NB = NV x lanes output channels and tile of
MR output positions, MR x NV vector accumulators start at the bias; each step (c, k) loads NV
weight vectors (contiguous: the packed order) and broadcasts x[c, t * stride + k] for the MR
positions: MR x NV FMAs per NV loads + MR broadcasts. The output is NCW, so each accumulator's
lanes are stored one by one (outputs are few next to the MACs: 257 x 75 for 10M of them); a
MatMul's row-major output (`layout` "tn") stores whole vectors.
Threads split the channel blocks."""

from __future__ import annotations

from llvmlite import ir

from edgec.codegen.common import vector_activation
from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.loops import for_range_carried
from edgec.codegen.types import I32
from edgec.codegen.vector import Vec


@lowering("WindowGemm")
def lower_window_gemm(kc: KernelContext) -> None:
    x, wp, bias = kc.inputs[:3]
    y = kc.outputs[0]
    a = kc.attrs
    batch, ch, width, taps, stride, rows, n_ = (a[k] for k in ("batch", "channels", "width", "taps", "stride",
                                                               "rows", "n"))
    mr, nv, lanes = (a["schedule"][k] for k in ("mr", "nv", "lanes"))
    nb = nv * lanes
    steps = ch * taps
    b = kc.b
    vec = Vec(b, lanes)
    act = a.get("activation")
    rows_major = a["layout"] == "tn"

    def tile(blk: ir.Value, xb: ir.Value, yb: ir.Value, t0: ir.Value, m: int, nv: int, full: bool) -> None:
        """Positions t0 .. t0+m-1 of channel block `blk` (batch offsets xb, yb), `nv` vectors of
        it; `full`: every lane is a real channel (no checks at the stores)."""
        col0 = b.mul(blk, kc.idx(nb))
        init = [vec.load(kc.gep(bias, b.add(col0, kc.idx(v * lanes)))) for v in range(nv)] * m
        wbase = b.mul(blk, kc.idx(steps * nb))
        xrow = [b.add(xb, b.mul(b.add(t0, kc.idx(r)), kc.idx(stride))) for r in range(m)]
        with for_range_carried(b, steps, kc.isize, init, "ck") as loop:
            j = loop.index
            off = j if ch == 1 else b.add(b.mul(b.udiv(j, kc.idx(taps)), kc.idx(width)), b.urem(j, kc.idx(taps)))
            wrow = b.add(wbase, b.mul(j, kc.idx(nb)))
            ws = [vec.load(kc.gep(wp, b.add(wrow, kc.idx(v * lanes)))) for v in range(nv)]
            acc = list(loop.values)
            for r in range(m):
                xs = vec.splat(kc.load(x, b.add(xrow[r], off)))
                for v in range(nv):
                    acc[r * nv + v] = vec.fma(xs, ws[v], acc[r * nv + v])
            loop.next = acc
        acc = loop.values
        for r in range(m):
            for v in range(nv):
                val = vector_activation(b, acc[r * nv + v], act, lanes)
                chan0 = b.add(col0, kc.idx(v * lanes))
                if rows_major:  # y[t, n]: contiguous lanes; the padded block's tail is cut
                    out = kc.gep(y, b.add(b.mul(b.add(t0, kc.idx(r)), kc.idx(n_)), chan0))
                    if full:
                        vec.store(val, out)
                        continue
                    full_v, partial = b.append_basic_block("wg.full"), b.append_basic_block("wg.part")
                    done = b.append_basic_block("wg.done")
                    b.cbranch(b.icmp_signed(">=", b.sub(kc.idx(n_), chan0), kc.idx(lanes)), full_v, partial)
                    b.position_at_end(full_v)
                    vec.store(val, out)
                    b.branch(done)
                    b.position_at_end(partial)
                    left = b.sub(kc.idx(n_), chan0)
                    for lane in range(lanes):
                        with b.if_then(b.icmp_signed(">", left, kc.idx(lane))):
                            b.store(b.extract_element(val, ir.Constant(I32, lane)),
                                    b.gep(out, [kc.idx(lane)], inbounds=True))
                    b.branch(done)
                    b.position_at_end(done)
                    continue
                out = b.add(yb, b.add(b.mul(chan0, kc.idx(rows)), b.add(t0, kc.idx(r))))
                last = b.sub(kc.idx(n_), chan0)  # channels left from chan0 (the block may be padded)
                for lane in range(lanes):
                    lane_v = b.extract_element(val, ir.Constant(I32, lane))
                    if full:
                        kc.b.store(lane_v, kc.gep(y, b.add(out, kc.idx(lane * rows))))
                        continue
                    with b.if_then(b.icmp_signed(">", last, kc.idx(lane))):
                        kc.b.store(lane_v, kc.gep(y, b.add(out, kc.idx(lane * rows))))

    def block(blk: ir.Value, nv_b: int, mr_b: int, full: bool) -> None:
        with kc.loop(batch, "b") as bi:
            xb = b.mul(bi, kc.idx(ch * width))
            yb = b.mul(bi, kc.idx(n_ * rows))
            tiles, rest = divmod(rows, mr_b)
            if tiles:
                with kc.loop(tiles, "t") as t:
                    tile(blk, xb, yb, b.mul(t, kc.idx(mr_b)), mr_b, nv_b, full)
            if rest:
                tile(blk, xb, yb, kc.idx(tiles * mr_b), rest, nv_b, full)

    # Whole blocks, then the last, partial one with only the vectors it needs (and taller tiles
    # for the registers they free): 257 STFT bins are 5 x 48 + 17, not 6 x 48.
    whole, left = divmod(n_, nb)
    t_start, t_end = kc.task_range(whole + (1 if left else 0))
    if whole:
        with kc.loop(b.select(b.icmp_signed("<", t_end, kc.idx(whole)), t_end, kc.idx(whole)), "blk",
                     start=t_start) as blk:
            block(blk, nv, mr, True)
    if left:
        nv_t = -(-left // lanes)
        mr_t = max(1, min(8, (kc.target.vector_registers - nv_t - 1) // nv_t))
        mine = b.and_(b.icmp_signed("<=", t_start, kc.idx(whole)), b.icmp_signed(">", t_end, kc.idx(whole)))
        with b.if_then(mine):  # the task whose share holds the last block
            block(kc.idx(whole), nv_t, mr_t, left == nv_t * lanes)

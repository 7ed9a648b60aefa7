"""`WindowGemm(x, Wp, bias)` (spec.py): per block of NB = NV x lanes output channels and tile of
MR output positions, MR x NV vector accumulators start at the bias; each step (c, k) loads NV
weight vectors (contiguous: the packed order) and broadcasts x[c, t * stride + k] for the MR
positions: MR x NV FMAs per NV loads + MR broadcasts. The output is NCW, so each accumulator's
lanes are stored one by one (outputs are few next to the MACs: 257 x 75 for 10M of them); a
MatMul's row-major output (`layout` "tn") stores whole vectors.
Output channels past the last whole vector are dot products along the window (tail.py).
Prefetches: a block of the weights is read from memory by its first tile only, then from
cache by the others; when blocks are short (up to PREFETCH_BLOCK_BYTES: K = 120 rows of 64
channels, 30 KB) every tile also prefetches its share of the next block, so the stream is
spread over the block's tiles rather than starting cold at each block (MatMul 40 x 120 x 18385
on Zen 4: 8% faster when onnxruntime runs in between; long blocks stream well on their own
and got slower with it). A row-major tile prefetches its output lines for writing before its
K loop. Threads split the channel blocks."""

from __future__ import annotations

from llvmlite import ir

from edgec.codegen.common import vector_activation
from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.loops import for_range_carried
from edgec.codegen.types import I32
from edgec.codegen.vector import Vec, intrinsic
from edgec.kernels.window_gemm.tail import dot_tail

I8P = ir.IntType(8).as_pointer()
PREFETCH_BLOCK_BYTES = 64 << 10


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

    pf_fn = intrinsic(b, "llvm.prefetch.p0", ir.VoidType(), [I8P, I32, I32, I32])
    w_last, y_last = (max(0, kc.value(v).size * 4 - 64) for v in (wp, y))  # the last line's byte

    def umin(v: ir.Value, limit: ir.Value) -> ir.Value:
        return b.select(b.icmp_unsigned("<", v, limit), v, limit)

    def prefetch(name: str, at: ir.Value, write: int) -> None:
        """Byte `at` of buffer `name` into L1."""
        ptr = b.gep(b.bitcast(kc.ptr(name), I8P), [at], inbounds=True)
        b.call(pf_fn, [ptr, ir.Constant(I32, write), ir.Constant(I32, 3), ir.Constant(I32, 1)])

    def tile(blk: ir.Value, xb: ir.Value, yb: ir.Value, t0: ir.Value, m: int, nv: int, full: bool,
             pf: tuple[ir.Value, ir.Value, int] | None = None) -> None:
        """Positions t0 .. t0+m-1 of channel block `blk` (batch offsets xb, yb), `nv` vectors of
        it; `full`: every lane is a real channel (no checks at the stores)."""
        col0 = b.mul(blk, kc.idx(nb))
        init = [vec.load(kc.gep(bias, b.add(col0, kc.idx(v * lanes)))) for v in range(nv)] * m
        wbase = b.mul(blk, kc.idx(steps * nb))
        xrow = [b.add(xb, b.mul(b.add(t0, kc.idx(r)), kc.idx(stride))) for r in range(m)]
        if rows_major:  # the tile's output lines, written after the K loop
            for r in range(m):
                first = b.mul(b.add(b.mul(b.add(t0, kc.idx(r)), kc.idx(n_)), col0), kc.idx(4))
                for v in range(0, nv * lanes * 4, 64):
                    prefetch(y, umin(b.add(first, kc.idx(v)), kc.idx(y_last)), 1)
        with for_range_carried(b, steps, kc.isize, init, "ck") as loop:
            j = loop.index
            off = j if ch == 1 else b.add(b.mul(b.udiv(j, kc.idx(taps)), kc.idx(width)), b.urem(j, kc.idx(taps)))
            wrow = b.add(wbase, b.mul(j, kc.idx(nb)))
            ws = [vec.load(kc.gep(wp, b.add(wrow, kc.idx(v * lanes)))) for v in range(nv)]
            if pf is not None:
                base, limit, per = pf
                for p in range(per // 64):
                    prefetch(wp, umin(b.add(base, b.add(b.mul(j, kc.idx(per)), kc.idx(p * 64))), limit), 0)
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

    def block(blk: ir.Value, nv_b: int, mr_b: int, full: bool, ahead: bool) -> None:
        tiles, rest = divmod(rows, mr_b)
        per_batch = tiles + (1 if rest else 0)
        # the next block's weights, spread over this block's tiles: `per` bytes a step
        per = -(-nb * 4 // (batch * per_batch) // 64) * 64
        nxt = b.mul(b.add(blk, kc.idx(1)), kc.idx(steps * nb * 4))
        limit = umin(b.add(nxt, kc.idx(steps * nb * 4 - 64)), kc.idx(w_last))

        def pf_at(s: ir.Value) -> tuple[ir.Value, ir.Value, int] | None:
            return ((b.add(nxt, b.mul(s, kc.idx(steps * per))), limit, per)
                    if ahead and steps * nb * 4 <= PREFETCH_BLOCK_BYTES else None)

        with kc.loop(batch, "b") as bi:
            xb = b.mul(bi, kc.idx(ch * width))
            yb = b.mul(bi, kc.idx(n_ * rows))
            if tiles:
                with kc.loop(tiles, "t") as t:
                    tile(blk, xb, yb, b.mul(t, kc.idx(mr_b)), mr_b, nv_b, full,
                         pf_at(b.add(b.mul(bi, kc.idx(per_batch)), t)))
            if rest:
                tile(blk, xb, yb, kc.idx(tiles * mr_b), rest, nv_b, full,
                     pf_at(b.add(b.mul(bi, kc.idx(per_batch)), kc.idx(tiles))))

    # Whole blocks, then the last, partial one with only the vectors it needs (and taller tiles
    # for the registers they free), then the `dot` channels left (tail.py): 257 STFT bins on 16
    # lanes are 4 x 64 + 1 dot product.
    dot = a["schedule"]["dot"]
    whole, left = divmod(n_ - dot, nb)
    t_start, t_end = kc.task_range(whole + (1 if left or dot else 0))
    if whole:
        with kc.loop(b.select(b.icmp_signed("<", t_end, kc.idx(whole)), t_end, kc.idx(whole)), "blk",
                     start=t_start) as blk:
            block(blk, nv, mr, True, True)
    if left or dot:
        mine = b.and_(b.icmp_signed("<=", t_start, kc.idx(whole)), b.icmp_signed(">", t_end, kc.idx(whole)))
        with b.if_then(mine):  # the task whose share holds the last block
            if left:
                nv_t = -(-left // lanes)
                mr_t = max(1, min(8, (kc.target.vector_registers - nv_t - 1) // nv_t))
                block(kc.idx(whole), nv_t, mr_t, left == nv_t * lanes, False)
            if dot:
                blocks = whole + (1 if left else 0)
                dot_tail(kc, blocks * steps * nb, blocks * nb)

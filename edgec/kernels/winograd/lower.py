"""Winograd F(r x r, 3 x 3) convolution (NCHW, stride 1, one group), vectorized over tiles.

Work is done per group of TG = NRV*VL horizontally adjacent r x r output tiles of one tile row:
1. input transform: for every input channel, the (r+2) x (r+2) patches of the TG tiles are read
   as (r+2) wide row loads + lane shuffles (lane t = tile t) and transformed, V = B^T d B, into
   the scratch as V[xi][c][tile] ((r+2)^2 points xi);
2. per block of MR output channels and per point xi, a small GEMM  M[xi][m][tile] =
   sum_c U[xi][m][c] V[xi][c][tile]  held in MR x NRV vector accumulators (weights U were
   transformed and packed at build time, edgec/kernels/winograd/pack.py);
3. output transform Y = A^T M A + bias, the fused activation, and stores: the r results of a
   tile row are interleaved so each store is a full run of contiguous output columns.
Transforms are straight-line code generated from the constant matrices (zero terms skipped,
+-1 as add/sub). Zero padding happens here (attr `pads`, top and left; everything outside the
input reads as zero): no Pad node writes and re-reads a padded copy of the map (two 10 MB Pads
were 3% of the PP-OCR-like det net).
"""

from __future__ import annotations

from llvmlite import ir

from edgec.codegen.common import interleave, vector_activation
from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.loops import for_range_carried, opaque
from edgec.codegen.types import I32, llvm_type
from edgec.codegen.vector import Vec

# (B^T, G, A^T) per output tile size r; alpha = r + 2 input points per tile side.
TRANSFORMS: dict[int, tuple[list[list[float]], list[list[float]], list[list[float]]]] = {
    2: ([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]]),
    4: ([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
         [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
         [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]),
}


def lincomb(b: ir.IRBuilder, vec: Vec, coeffs: list[float], vals: list[ir.Value]) -> ir.Value:
    """sum_k coeffs[k] * vals[k], skipping zero coefficients. No fast-math flags here: with
    reassociation allowed LLVM orders the sums by context (e.g. after propagating the constant
    task index of a 1-thread build), and results would differ bitwise between thread counts."""
    acc = None
    for k, v in zip(coeffs, vals):
        if k == 0:
            continue
        kv = ir.Constant(vec.ty, [float(k)] * vec.lanes)
        if acc is None:
            acc = v if k == 1 else b.fmul(kv, v)
        elif k == 1:
            acc = b.fadd(acc, v)
        elif k == -1:
            acc = b.fsub(acc, v)
        else:
            acc = vec.fma(kv, v, acc)
    return acc if acc is not None else vec.zeros()


@lowering("ConvWinograd")
def lower_conv_winograd(kc: KernelContext) -> None:
    xp, up, bias = kc.inputs[:3]
    y, scratch = kc.outputs[:2]
    n_, c_, hp, wp = kc.shape(xp)
    _, m_, oh_, ow_ = kc.shape(y)
    r = int(kc.attrs["tile"])
    a = r + 2
    a2 = a * a
    s = kc.attrs["schedule"]
    mr, nrv, lanes = s["mr"], s["nrv"], s["lanes"]
    tg = nrv * lanes
    bt, _, at = TRANSFORMS[r]
    th_, tw_ = -(-oh_ // r), -(-ow_ // r)
    mb_ = -(-m_ // mr)
    act = kc.attrs.get("activation")
    residual = kc.inputs[3] if kc.attrs.get("residual") else None
    b = kc.b
    vec = Vec(b, lanes, llvm_type(kc.dtype(y)))  # fp32, or fp16 (`--precision fp16`)
    idx = kc.idx
    per_task = scratch_per_task(r, tg, c_, mr, lanes)
    v_base = b.mul(kc.task, idx(per_task)) if kc.parallel else idx(0)
    m_base = b.add(v_base, idx(a2 * tg * c_))
    width = lanes * r + r  # input columns one vector of tiles reads (r+2 each, r apart)
    zero_row = kc.gep(scratch, b.add(m_base, idx(a2 * tg * mr)))  # `width` zeros, this task's
    zeros = ir.Constant(ir.VectorType(vec.ety, width), [0.0] * width)
    b.store(zeros, b.bitcast(zero_row, zeros.type.as_pointer()), align=vec.align)
    e_buf = kc.gep(scratch, b.add(m_base, idx(a2 * tg * mr + zero_len(r, lanes))))  # E, a2 vectors
    pt, pl = kc.attrs.get("pads", (0, 0))

    two_pass = 2 * a2 > kc.target.vector_registers

    def input_transform(n: ir.Value, th: ir.Value, tile0: ir.Value, nv: int, first: int | None) -> None:
        """Rows outside the input read the zero row; columns outside it are zero lanes of the
        shuffles. Only the first and the last group of a tile row (`first` = their static first
        tile) touch the left/right borders; the groups between read straight from x.
        V = B^T d B in one pass holds the a*a patch vectors and a*a partial sums at once: it
        fits 32 registers for F(2,3) only, and spilled elsewhere (F(4,3): 178 stack stores per
        channel on AVX2, 68 on AVX-512, ~100 on aarch64). There it takes two passes, a row or
        a column at a time (~2a registers): E = d B into a small buffer, then V = B^T E. E has
        a buffer of its own: V's points are c*tg floats apart, 4 KB multiples share an L1 set,
        and E read back from there missed (64 -> 64 at 56x56 on AVX2: 1.66x slower than the
        spills; from its own buffer 0.92x)."""

        def patch_row(row: tuple[ir.Value, ir.Value], col: ir.Value, shift: int, ok: list | None,
                      barrier: bool) -> list[ir.Value]:
            """d[i][0..a) of input row `row` (inside, offset): one wide load and `a` shuffles."""
            ptr = b.select(row[0], kc.gep(xp, b.add(row[1], col)), zero_row)
            wide = vec.load(opaque(b, ptr) if barrier else ptr, width)
            other = zeros if ok else ir.Constant(wide.type, ir.Undefined)
            return [b.shuffle_vector(wide, other, ir.Constant(ir.VectorType(I32, lanes), [
                t * r + j + shift if ok is None or ok[j][t] else width for t in range(lanes)])) for j in range(a)]

        with kc.loop(c_, "c") as c:
            chan = b.mul(b.add(b.mul(n, idx(c_)), c), idx(hp * wp))
            rows = []
            for i in range(a):
                iy = b.sub(b.add(b.mul(th, idx(r)), idx(i)), idx(pt))
                rows.append((b.icmp_unsigned("<", iy, idx(hp)), b.add(chan, b.mul(iy, idx(wp)))))
            for v in range(nv):
                if first is None:
                    col = b.sub(b.mul(b.add(tile0, idx(v * lanes)), idx(r)), idx(pl))
                    shift, ok = 0, None
                else:
                    s0 = (first + v * lanes) * r - pl
                    col, shift = idx(max(s0, 0)), min(s0, 0)
                    ok = [[0 <= s0 + t * r + j < wp for t in range(lanes)] for j in range(a)]
                if not two_pass:
                    d = [patch_row(rows[i], col, shift, ok, False) for i in range(a)]
                    t1 = [[lincomb(b, vec, bt[p], [d[i][j] for i in range(a)]) for j in range(a)] for p in range(a)]
                    for p in range(a):
                        for q in range(a):
                            off = b.add(v_base, b.add(b.mul(b.add(idx((p * a + q) * c_), c), idx(tg)), idx(v * lanes)))
                            vec.store(lincomb(b, vec, bt[q], t1[p]), kc.gep(scratch, off))
                    continue
                # Opaque pointers (no instruction; ordered after the stores before them): no row
                # or column is loaded before the previous one is stored (LLVM hoisted them all),
                # the second pass does not see the first's stores (forwarded, E stayed live), and
                # V's points stay immediate offsets from one base (c*tg | xi*c*tg became 36
                # offsets in registers on aarch64).
                base = opaque(b, kc.gep(scratch, b.add(v_base, b.add(b.mul(c, idx(tg)), idx(v * lanes)))))
                for i in range(a):
                    d = patch_row(rows[i], col, shift, ok, True)
                    e_row = opaque(b, e_buf)
                    for q in range(a):
                        vec.store(lincomb(b, vec, bt[q], d), b.gep(e_row, [idx((i * a + q) * lanes)], inbounds=True))
                for q in range(a):
                    e_col = opaque(b, e_buf)
                    e = [vec.load(b.gep(e_col, [idx((i * a + q) * lanes)], inbounds=True)) for i in range(a)]
                    for p in range(a):
                        vec.store(lincomb(b, vec, bt[p], e), b.gep(base, [idx((p * a + q) * c_ * tg)], inbounds=True))

    # armv7: the MR weights as lanes of vector loads (vmla.f32 by scalar, Vec.splats): with
    # dup-loaded broadcasts LLVM kept several live and 6x2 spilled in every GEMM loop.
    by_lane = kc.target.arch == "armv7"

    def gemm(mb: ir.Value, nv: int) -> None:
        for xi in range(a2):
            init = [vec.zeros()] * (mr * nv)
            with for_range_carried(b, c_, kc.isize, init, f"k{xi}_") as loop:
                c = loop.index
                vrow = b.add(v_base, b.mul(b.add(idx(xi * c_), c), idx(tg)))
                xs = [vec.load(kc.gep(scratch, b.add(vrow, idx(v * lanes)))) for v in range(nv)]
                woff = b.mul(b.add(b.mul(b.add(idx(xi * mb_), mb), idx(c_)), c), idx(mr))
                cur = list(loop.values)
                for m, wb in enumerate(vec.splats(kc.gep(up, woff), mr, by_lane)):
                    for v in range(nv):
                        cur[m * nv + v] = vec.fma(wb, xs[v], cur[m * nv + v])
                loop.next = cur
            for m in range(mr):
                for v in range(nv):
                    off = b.add(m_base, idx((xi * mr + m) * tg + v * lanes))
                    vec.store(loop.values[m * nv + v], kc.gep(scratch, off))

    def output_transform(n: ir.Value, th: ir.Value, tile0: ir.Value, mb: ir.Value, nv: int, valid: int) -> None:
        # The GEMM results are read back through an opaque pointer: forwarded from the GEMM's
        # stores, all a2 x MR x NRV of them stayed live across the later GEMM loops and the
        # last loops spilled accumulators (AVX2: 2 of 12 in the 16th; aarch64: 5 of 36 loops).
        # With both changes AVX2 runs 0.92-0.95x of the time before (32..128 channels, 28..112
        # pixels, paired rounds), AVX-512 0.96-0.99x.
        sp = opaque(b, kc.ptr(scratch))
        for m in range(mr):
            oc = b.add(b.mul(mb, idx(mr)), idx(m))
            store_bb, next_bb = b.append_basic_block("store"), b.append_basic_block("next")
            b.cbranch(b.icmp_signed("<", oc, idx(m_)), store_bb, next_bb)
            b.position_at_end(store_bb)
            bv = vec.splat(kc.load(bias, oc))
            plane = b.mul(b.add(b.mul(n, idx(m_)), oc), idx(oh_ * ow_))
            for v in range(nv):
                mv = [vec.load(b.gep(sp, [b.add(m_base, idx((xi * mr + m) * tg + v * lanes))], inbounds=True))
                      for xi in range(a2)]
                t2 = [[lincomb(b, vec, at[i], [mv[p * a + q] for p in range(a)]) for q in range(a)] for i in range(r)]
                col = b.mul(b.add(tile0, idx(v * lanes)), idx(r))
                count = min(lanes * r, valid - v * lanes * r)
                for i in range(r):
                    vals = [b.fadd(lincomb(b, vec, at[j], t2[i]), bv) for j in range(r)]
                    orow = b.add(b.mul(th, idx(r)), idx(i))
                    row_bb = after_bb = None
                    if oh_ % r:  # the last tile row is partial
                        row_bb, after_bb = b.append_basic_block("row"), b.append_basic_block("rowdone")
                        b.cbranch(b.icmp_signed("<", orow, idx(oh_)), row_bb, after_bb)
                        b.position_at_end(row_bb)
                    dst = b.add(plane, b.add(b.mul(orow, idx(ow_)), col))
                    for k, out in enumerate(interleave(b, vals, lanes)):
                        if count <= k * lanes:
                            continue
                        at_k = b.add(dst, idx(k * lanes))
                        if residual:  # fused shortcut Add (before the activation, as in the graph)
                            out = b.fadd(out, vec.load(kc.gep(residual, at_k)))
                        out = vector_activation(b, out, act, lanes)
                        vec.store_lanes(out, kc.gep(y, at_k), min(lanes, count - k * lanes))
                    if after_bb is not None:
                        b.branch(after_bb)
                        b.position_at_end(after_bb)
            b.branch(next_bb)
            b.position_at_end(next_bb)

    def group(n: ir.Value, th: ir.Value, tile0: ir.Value, ntiles: int, valid: int, first: int | None = None) -> None:
        nv = -(-ntiles // lanes)
        input_transform(n, th, tile0, nv, first)
        with kc.loop(mb_, "mb") as mb:
            gemm(mb, nv)
            output_transform(n, th, tile0, mb, nv, valid)

    full, rem = divmod(tw_, tg)
    if rem == 0:  # the last group reads the right border: it takes the static (checked) path
        full, rem = full - 1, tg
    t0, t1 = kc.task_range(th_)
    with kc.loop(n_, "n") as n, kc.loop(t1, "th", start=t0) as th:
        if full:  # the first group reads the left border
            group(n, th, idx(0), tg, tg * r, first=0)
        if full > 1:
            with kc.loop(full, "g", start=1) as gi:
                group(n, th, b.mul(gi, idx(tg)), tg, tg * r)
        group(n, th, idx(full * tg), rem, ow_ - full * tg * r, first=full * tg)


def scratch_per_task(r: int, tg: int, channels: int, mr: int, lanes: int) -> int:
    """Floats of scratch per task: transformed input tiles, one block's GEMM results, a zero
    row, the input transform's row pass (E)."""
    a2 = (r + 2) ** 2
    return a2 * tg * (channels + mr) + zero_len(r, lanes) + a2 * lanes


def zero_len(r: int, lanes: int) -> int:
    """Floats of the zero row: the `lanes * r + r` input columns of a vector of tiles, whole vectors."""
    return -(-(lanes * r + r) // lanes) * lanes

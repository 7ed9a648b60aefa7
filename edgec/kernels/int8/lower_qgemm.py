"""`QGemmDot`: an integer matrix product with constant B on the 4-way byte dot products
(vpdpbusd with VNNI, vpmaddubsw + vpmaddwd on AVX2 when B fits [-64, 64], sdot on aarch64 with
dotprod): MatMulInteger of onnxruntime's dynamic quantization, whose A (and its zero point) is
only known at run time. Made by the `prepare-qgemm` pass (prepare_qgemm.py), which explains
the encoding; the int32 result is exact.

`QGemmDot(a, a_zp, bq, col_term, beta) -> y` (int32 [..., M, N]; all leading dims of A are rows):
- bq: B' = B - cb as bytes [N/8][K/4][8][4] (zero padded), read as 8 int32 words per quad step;
- raw[m][n] = sum_k a_enc[m][k] * B'[k][n] where a_enc = a ^ flip (the byte kind the dot wants);
- y = raw + beta[n] * rowsum(a_enc)[m] + alpha * col_term[n], alpha = offset - a_zp at run time.
A tile is MR rows x NV vectors of 8 columns: each quad step broadcasts one word of A per row and
loads NV words-vectors of B, MR x NV dots. Column groups are split across threads; one group's
B panel (K * NV * 32 bytes) stays in L1/L2 while every row tile passes over it.
"""

from __future__ import annotations

from llvmlite import ir

from edgec.codegen.isa.aarch64 import sdot4
from edgec.codegen.isa.x86 import dot4_x86
from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.loops import for_range_carried, opaque
from edgec.codegen.types import I8, I32
from edgec.codegen.vector import splat, vtype
from edgec.kernels.generic.reduce import entry_alloca


def _dot(kind: str):  # noqa: ANN202 - a dot4 function
    return sdot4 if kind == "s8s8" else dot4_x86(kind)


@lowering("QGemmDot")
def lower_qgemm_dot(kc: KernelContext) -> None:
    a, az, bq, col_term, beta = kc.inputs[:5]
    y = kc.outputs[0]
    b = kc.b
    k_ = kc.shape(a)[-1]
    n_ = kc.shape(y)[-1]
    m_ = kc.value(a).size // k_
    lanes = kc.attrs["lanes"]
    mr, nv = kc.attrs["mr"], kc.attrs["nv"]
    flip = kc.attrs["flip"]
    dot = _dot(kc.attrs["dot"])
    kq_ = -(-k_ // 4)
    nblocks = -(-n_ // lanes)
    vty = vtype(I32, lanes)
    a_signed = kc.dtype(a).name == "int8"
    zpa = kc.load(az, 0) if az else ir.Constant(I8, 0)
    zpa = b.sext(zpa, I32) if a_signed else b.zext(zpa, I32)
    alpha = splat(b, b.sub(ir.Constant(I32, kc.attrs["offset"]), zpa), lanes)

    rowsum = None
    if kc.attrs["row_sums"]:  # sum_k a_enc[m][k] for every row, once per call (M * K byte adds)
        rowsum = entry_alloca(kc, I32, m_)
        with kc.loop(m_, "rs") as m:
            with for_range_carried(b, k_, kc.isize, [ir.Constant(I32, 0)], "rk") as lp:
                v = b.xor(kc.load(a, b.add(b.mul(m, kc.idx(k_)), lp.index)), ir.Constant(I8, flip))
                lp.next = [b.add(lp.values[0], b.zext(v, I32) if kc.attrs["dot"] != "s8s8" else b.sext(v, I32))]
            b.store(lp.values[0], b.gep(rowsum, [m]))

    def a_word(row: ir.Value, kq: ir.Value, last: bool) -> ir.Value:
        """a_enc[row][4kq..4kq+3] as one word; a partial last quad is built from its bytes (the
        missing bytes meet zero weights)."""
        base = b.add(b.mul(row, kc.idx(k_)), b.mul(kq, kc.idx(4)))
        if not last:
            w = b.load(b.bitcast(kc.gep(a, base), I32.as_pointer()), align=1)
            return b.xor(w, ir.Constant(I32, flip * 0x01010101)) if flip else w
        word = ir.Constant(I32, 0)
        for j in range(k_ % 4):
            v = b.zext(b.xor(kc.load(a, b.add(base, kc.idx(j))), ir.Constant(I8, flip)), I32)
            word = b.or_(word, b.shl(v, ir.Constant(I32, 8 * j)))
        return word

    def tile(blk0: ir.Value, count: int, m0: ir.Value, rows: int) -> None:
        """Rows m0..m0+rows-1 x column blocks blk0..blk0+count-1."""
        zero = ir.Constant(vty, [0] * lanes)
        b0 = opaque(b, kc.ptr(bq))

        def step(accs: list[ir.Value], kq: ir.Value, last: bool) -> list[ir.Value]:
            ws = []
            for j in range(count):
                off = b.mul(b.add(b.mul(b.add(blk0, kc.idx(j)), kc.idx(kq_)), kq), kc.idx(lanes * 4))
                ws.append(b.load(b.bitcast(b.gep(b0, [off], inbounds=True), vty.as_pointer()), align=4))
            out = list(accs)
            for r in range(rows):
                av = splat(b, a_word(b.add(m0, kc.idx(r)), kq, last), lanes)
                for j in range(count):
                    out[r * count + j] = b.add(out[r * count + j], dot(b, av, ws[j], lanes), flags=["nsw"])
            return out

        full = k_ // 4
        with for_range_carried(b, opaque(b, kc.idx(full)), kc.isize, [zero] * (rows * count), "kq") as loop:
            loop.next = step(loop.values, loop.index, False)
        accs = loop.values
        if k_ % 4:
            accs = step(accs, kc.idx(full), True)
        for j in range(count):
            col = b.mul(b.add(blk0, kc.idx(j)), kc.idx(lanes))
            bv = b.load(b.bitcast(kc.gep(beta, col), vty.as_pointer()), align=4)
            cv = b.load(b.bitcast(kc.gep(col_term, col), vty.as_pointer()), align=4)
            corr = b.mul(alpha, cv)
            for r in range(rows):
                m = b.add(m0, kc.idx(r))
                v = b.add(accs[r * count + j], corr)
                if rowsum is not None:
                    v = b.add(v, b.mul(bv, splat(b, b.load(b.gep(rowsum, [m])), lanes)))
                _store_row(kc, y, b.add(b.mul(m, kc.idx(n_)), col), col, v, lanes, n_)

    groups, rem = divmod(nblocks, nv)
    mt, mrem = divmod(m_, mr)

    def group(blk0: ir.Value, count: int) -> None:
        if mt:
            with kc.loop(mt, "mt") as t:
                tile(blk0, count, b.mul(t, kc.idx(mr)), mr)
        if mrem:
            tile(blk0, count, kc.idx(mt * mr), mrem)

    g0, g1 = kc.task_range(groups + (1 if rem else 0))
    if groups:
        with kc.loop(b.select(b.icmp_unsigned("<", g1, kc.idx(groups)), g1, kc.idx(groups)), "ng", start=g0) as g:
            group(b.mul(g, kc.idx(nv)), nv)
    if rem:  # the last, narrower group belongs to the task whose range ends past the full ones
        last_bb, done_bb = b.append_basic_block("last_group"), b.append_basic_block("done")
        mine = b.and_(b.icmp_unsigned("<=", g0, kc.idx(groups)), b.icmp_unsigned(">", g1, kc.idx(groups)))
        b.cbranch(mine, last_bb, done_bb)
        b.position_at_end(last_bb)
        group(kc.idx(groups * nv), rem)
        b.branch(done_bb)
        b.position_at_end(done_bb)


def _store_row(kc: KernelContext, y: str, dst: ir.Value, col: ir.Value, v: ir.Value, lanes: int, n_: int) -> None:
    """One vector of a row; the columns past N (only in the last block) are not stored."""
    b = kc.b
    if n_ % lanes == 0:
        b.store(v, b.bitcast(kc.gep(y, dst), v.type.as_pointer()), align=4)
        return
    whole, part, done = (b.append_basic_block(t) for t in ("whole", "part", "stored"))
    b.cbranch(b.icmp_signed("<=", b.add(col, kc.idx(lanes)), kc.idx(n_)), whole, part)
    b.position_at_end(whole)
    b.store(v, b.bitcast(kc.gep(y, dst), v.type.as_pointer()), align=4)
    b.branch(done)
    b.position_at_end(part)  # the last block: n_ % lanes columns
    for i in range(n_ % lanes):
        kc.store(y, b.add(dst, kc.idx(i)), b.extract_element(v, ir.Constant(I32, i)))
    b.branch(done)
    b.position_at_end(done)

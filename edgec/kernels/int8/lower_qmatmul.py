"""QGemv: a quantized row vector times a constant int8/uint8 matrix (the classifier layer of a
QDQ network, batch 1), made by `prepare-qconv` from a QMatMul.

B minus its zero points is stored as int16 pairs [n_block][k/2][lanes] (int32 words), so one
broadcast pair (a[2k] - a_zp, a[2k+1] - a_zp) and one `pmaddwd` (smull + addp on aarch64) add two
products into each of `lanes` output columns; NB column vectors share each broadcast.
Requantization as in qconv_direct.py.
With `dot` = "u8s8" (x86 AVX2, B minus its zero points within [-64, 64]) B is stored as byte
quads [n_block][k/4][lanes][4] and A's own 4 consecutive bytes are the broadcast word: one
vpmaddubsw + vpmaddwd adds 4 products per column, and B is half the bytes of the pairs (the
classifier of MobileNetV2 streams 1.3 instead of 2.6 MB per inference).
"""

from __future__ import annotations

from llvmlite import ir

from edgec.codegen.isa.x86 import dot4_u8s8
from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.loops import for_range_carried
from edgec.codegen.types import F32, I8, I16, I32
from edgec.codegen.vector import splat, vtype
from edgec.kernels.generic.quant import load_i32, round_clamp
from edgec.kernels.int8.lower_direct import _madd

NB = 4  # column vectors per pass over A


@lowering("QGemv")
def lower_qgemv(kc: KernelContext) -> None:
    a, az, bpk, bias, mult, yz = kc.inputs[:6]
    y = kc.outputs[0]
    b = kc.b
    k_ = kc.shape(a)[-1]
    n_ = kc.shape(y)[-1]
    lanes = kc.attrs["lanes"]
    quads = kc.attrs.get("dot") == "u8s8"
    per = 4 if quads else 2  # k values per 32-bit word
    kp_ = -(-k_ // per)
    flip = kc.attrs.get("flip", 0)
    blocks = -(-n_ // lanes)
    zpa = load_i32(kc, az, 0)
    zpy = splat(b, load_i32(kc, yz, 0), lanes)
    vty = vtype(I32, lanes)

    def pair(kp: ir.Value, last: bool) -> ir.Value:
        lo = b.zext(b.trunc(b.sub(load_i32(kc, a, b.mul(kp, kc.idx(2))), zpa), I16), I32)
        if last and k_ % 2:
            return lo
        hi = b.sub(load_i32(kc, a, b.add(b.mul(kp, kc.idx(2)), kc.idx(1))), zpa)
        return b.or_(lo, b.shl(hi, ir.Constant(I32, 16)))

    def quad(kq: ir.Value, last: bool) -> ir.Value:
        """a[4kq..4kq+3] (^ flip) as one word: a plain 4-byte load, except a partial last quad,
        built from its bytes and padded with the zero point byte (its weights are 0)."""
        if not last:
            w = b.load(b.bitcast(kc.gep(a, b.mul(kq, kc.idx(4))), I32.as_pointer()), align=1)
            return b.xor(w, ir.Constant(I32, flip * 0x01010101)) if flip else w
        word = ir.Constant(I32, 0)
        for j in range(4):
            if j < k_ % 4:
                v = b.zext(b.xor(kc.load(a, b.add(b.mul(kq, kc.idx(4)), kc.idx(j))), ir.Constant(I8, flip)), I32)
            else:
                v = ir.Constant(I32, kc.attrs["pad"])
            word = b.or_(word, b.shl(v, ir.Constant(I32, 8 * j)))
        return word

    def group(nb0: ir.Value, count: int) -> None:
        zero = ir.Constant(vty, [0] * lanes)

        def step(accs: list[ir.Value], kp: ir.Value, last: bool) -> list[ir.Value]:
            av = splat(b, quad(kp, last) if quads else pair(kp, last), lanes)
            out = []
            for j, acc in enumerate(accs):
                off = b.mul(b.add(b.mul(b.add(nb0, kc.idx(j)), kc.idx(kp_)), kp), kc.idx(lanes))
                wv = b.load(b.bitcast(kc.gep(bpk, off), vty.as_pointer()), align=4)
                prod = dot4_u8s8(b, av, wv, lanes) if quads else _madd(b, wv, av, lanes)
                out.append(b.add(acc, prod, flags=["nsw"]))
            return out

        full = k_ // per
        with for_range_carried(b, full, kc.isize, [zero] * count, "kp") as loop:
            loop.next = step(loop.values, loop.index, False)
        accs = loop.values
        if k_ % per:
            accs = step(accs, kc.idx(full), True)
        for j, acc in enumerate(accs):
            col = b.mul(b.add(nb0, kc.idx(j)), kc.idx(lanes))
            bv = b.load(b.bitcast(kc.gep(bias, col), vty.as_pointer()), align=4)
            mv = b.load(b.bitcast(kc.gep(mult, col), vtype(F32, lanes).as_pointer()), align=4)
            f = b.fmul(b.sitofp(b.add(acc, bv), vtype(F32, lanes)), mv)
            q = b.trunc(round_clamp(b, f, zpy, kc.attrs["qmin"], kc.attrs["qmax"], finite=True), vtype(I8, lanes))
            # Columns past N exist only in the packed buffers: the last block stores lane by lane.
            whole, part, done = (b.append_basic_block(t) for t in ("whole", "part", "done"))
            b.cbranch(b.icmp_signed("<=", b.add(col, kc.idx(lanes)), kc.idx(n_)), whole, part)
            b.position_at_end(whole)
            b.store(q, b.bitcast(kc.gep(y, col), vtype(I8, lanes).as_pointer()), align=1)
            b.branch(done)
            b.position_at_end(part)
            for i in range(min(lanes, n_)):
                c = b.add(col, kc.idx(i))
                ok_bb, next_bb = b.append_basic_block("st"), b.append_basic_block("nx")
                b.cbranch(b.icmp_signed("<", c, kc.idx(n_)), ok_bb, next_bb)
                b.position_at_end(ok_bb)
                kc.store(y, c, b.extract_element(q, ir.Constant(I32, i)))
                b.branch(next_bb)
                b.position_at_end(next_bb)
            b.branch(done)
            b.position_at_end(done)

    full_groups, rem = divmod(blocks, NB)
    if full_groups:
        with kc.loop(full_groups, "nb") as g:
            group(b.mul(g, kc.idx(NB)), NB)
    if rem:
        group(kc.idx(full_groups * NB), rem)

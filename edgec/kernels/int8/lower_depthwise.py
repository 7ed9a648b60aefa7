"""Depthwise int8 convolution straight from the u8/s8 NCHW map (x86 AVX2): `QDepthwiseBytes`.

`QDepthwiseBytes(x, w, bias, mult, y_zp)`: one output channel per input channel, kernel width
<= 8 (one byte quad per 4 taps of a kernel row), row stride 1 or 2. Per channel, a band of output rows at a time, the kernel copies the
input rows it needs into a padded buffer on the stack: bytes `x ^ flip`, with borders and rows
outside the map holding the zero point byte `pad` as in the quad layout of qconv_quads.py (the
bias holds -pad * sum(w)). It then builds the byte quads of the output pixels in registers: one
32-byte load and one in-half byte shuffle give (x[s*j], x[s*j+1], x[s*j+2], x[s*j+3]) for 8
pixels j, so a kernel row is one vpmaddubsw + vpmaddwd against the broadcast weight row
(w[ky][0..KW-1], zero padded).

This replaces the "spatial" QConvQuads pass for these layers: that one wrote 4 bytes per input
pixel to memory and read them back, even where a stride-2 conv reads half the rows (MobileNetV2
int8: 23% of the time in quad layouts).
"""

from __future__ import annotations

from llvmlite import ir

from edgec.codegen.isa.x86 import dot4_x86, pshufb
from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.loops import opaque
from edgec.codegen.types import F32, I8, I32, llvm_type
from edgec.codegen.vector import splat, vtype
from edgec.kernels.generic.quant import round_clamp
from edgec.kernels.generic.reduce import entry_alloca
from edgec.kernels.int8.requant_x86 import pack_store

LANES = 8
CHUNK = 32  # bytes per vector copy into the row buffer
UNIT = 16  # output pixels per pair of vectors
MARGIN = 8  # buffer bytes before each padded row
OFFSETS = {1: (-8, -4), 2: (0, 8)}  # 32-byte load offsets of vectors A and B of a unit
BAND_BYTES = 32 * 1024  # padded input rows buffered per band of output rows (L1 sized)




def row_bytes(w: int, ow: int, sw: int, pl: int, pr: int, nq: int = 1) -> int:
    """Row buffer length: MARGIN bytes before the padded row (the stride-1 loads start 8
    bytes early), the row, the right border vector store, and what the last 16-pixel unit
    reads (32 bytes from OFFSETS[sw][1] past its start, 4 more per extra quad of a kernel
    row); rounded to 32 bytes."""
    last = (-(-ow // UNIT) - 1) * UNIT * sw
    need = max(MARGIN + pl + w + CHUNK, MARGIN + last + OFFSETS[sw][1] + 32 + 4 * (nq - 1), MARGIN + pl + w + pr)
    return -(-need // CHUNK) * CHUNK


@lowering("QDepthwiseBytes")
def lower_qdepthwise_bytes(kc: KernelContext) -> None:
    x, wpk, bias, mult, yz = kc.inputs[:5]
    y = kc.outputs[0]
    b = kc.b
    dot4 = dot4_x86(kc.attrs.get("dot", "u8s8"))
    _, c_, h_, w_ = kc.shape(x)
    _, _, oh_, ow_ = kc.shape(y)
    kh_, kw_ = kc.attrs["kernel"]
    sh, sw = kc.attrs["strides"]
    dh = kc.attrs["dilations"][0]
    pt, pl, _, pr = kc.attrs["pads"]
    flip, pad = kc.attrs["flip"], kc.attrs["pad"]
    qmin, qmax = kc.attrs["qmin"], kc.attrs["qmax"]
    nq = -(-kw_ // 4)  # quads per kernel row: taps 0-3, 4-7
    rw = row_bytes(w_, ow_, sw, pl, pr, nq)
    b8 = lambda n: vtype(I8, n)  # noqa: E731
    pad_v = ir.Constant(b8(CHUNK), [pad] * CHUNK)
    signed = kc.dtype(y).name == "int8"
    fast = bool(kc.attrs.get("pack_requant"))
    zp = kc.load(yz, 0) if yz else ir.Constant(llvm_type(kc.dtype(y)), 0)
    zp_s = b.sext(zp, I32) if signed else b.zext(zp, I32)
    zp = splat(b, zp_s, LANES)

    halo = (kh_ - 1) * dh + 1  # input rows of one output row
    band = max(1, min(oh_, (BAND_BYTES // rw - halo) // sh + 1))  # output rows per band
    rows = entry_alloca(kc, I8, ((band - 1) * sh + halo) * rw)

    def at(buf: ir.Value, off: ir.Value | int) -> ir.Value:
        return b.gep(buf, [off if isinstance(off, ir.Value) else kc.idx(off)], inbounds=True)

    def store_vec(v: ir.Value, ptr: ir.Value) -> None:
        b.store(v, b.bitcast(ptr, v.type.as_pointer()), align=1)

    def copy(src: ir.Value, dst: ir.Value, n: int) -> None:
        """n bytes, 32 at a time; the last piece overlaps the one before (or, for rows under
        32 bytes, descending power-of-two pieces)."""
        def piece(off: int | ir.Value, size: int) -> None:
            v = b.load(b.bitcast(at(src, off), b8(size).as_pointer()), align=1)
            store_vec(b.xor(v, ir.Constant(b8(size), [flip] * size)) if flip else v, at(dst, off))
        if n >= CHUNK:
            with kc.loop(n // CHUNK, "cp") as i:
                piece(b.mul(i, kc.idx(CHUNK)), CHUNK)
            if n % CHUNK:
                piece(n - CHUNK, CHUNK)
            return
        off = 0
        for size in (16, 8, 4, 2, 1):
            if n - off >= size:
                piece(off, size)
                off += size

    # A unit is 16 output pixels in two vectors: A = pixels [0..3 | 8..11], B = [4..7 | 12..15]
    # (low | high 128-bit half). Each is one 32-byte load (at OFFSETS[sw] from the unit's first
    # input byte) and one in-half vpshufb: no cross-half shuffle, and packssdw(A, B) puts the
    # 16 pixels back in order. Bytes past the kernel width meet a zero weight (they repeat k=0).
    off_a, off_b = OFFSETS[sw]
    # Quad q of a kernel row (taps 4q..4q+3) is the same shuffle of a load 4q bytes further.
    masks: list[list[ir.Constant]] = []
    for off, first in ((off_a, 0), (off_b, 4)):
        per_q = []
        for q in range(nq):
            m = [sw * (first + 8 * half + j) + (k if 4 * q + k < kw_ else 0) - off - 16 * half
                 for half in range(2) for j in range(4) for k in range(4)]
            if min(m) < 0 or max(m) > 15:
                raise ValueError(f"QDepthwiseBytes: kernel width {kw_} at stride {sw} exceeds a 16-byte half")
            per_q.append(ir.Constant(b8(32), m))
        masks.append(per_q)
    natural = ir.Constant(vtype(I32, 16), [0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15])

    def emit_rows(in_ptrs: list[ir.Value], outs: list[tuple[ir.Value, list[int]]], wv: list[ir.Value],
                  bv: ir.Value, mv: ir.Value) -> None:
        """Output rows `outs` = (row offset in y, indices into `in_ptrs` of its KH input rows),
        16 pixels per unit. Rows shared by two outputs (stride 1) are loaded and shuffled once."""
        def units(ow0: ir.Value, n: int, count: int) -> None:
            """`n` units from pixel `ow0`, the first `count` pixels stored."""
            scaled: list[list[ir.Value]] = [[] for _ in outs]
            for u in range(n):
                for off, mask_q in zip((off_a, off_b), masks):
                    quads: dict[tuple[int, int], ir.Value] = {}
                    for i in sorted({i for _, rows_ in outs for i in rows_}):
                        for q, mask in enumerate(mask_q):
                            src = at(in_ptrs[i], b.add(b.mul(ow0, kc.idx(sw)), kc.idx(16 * u * sw + off + 4 * q)))
                            raw = b.load(b.bitcast(src, b8(32).as_pointer()), align=1)
                            quads[i, q] = b.bitcast(pshufb(b, raw, mask), vtype(I32, LANES))
                    for o, (_, rows_) in enumerate(outs):
                        acc = ir.Constant(vtype(I32, LANES), [0] * LANES)
                        for ky, i in enumerate(rows_):
                            for q in range(nq):
                                acc = b.add(acc, dot4(b, quads[i, q], wv[ky][q], LANES), flags=["nsw"])
                        scaled[o].append(b.fmul(b.sitofp(b.add(acc, bv), vtype(F32, LANES)), mv))
            for (out_row, _), sc in zip(outs, scaled):
                store(kc.gep(y, b.add(out_row, ow0)), sc, n, count)

        step = 2 * UNIT if fast else UNIT  # 32 pixels per pack on x86
        full, rest = divmod(ow_, step)
        if full:
            with kc.loop(full, "owg") as g:
                units(b.mul(g, kc.idx(step)), step // UNIT, step)
        if rest:
            units(kc.idx(full * step), -(-rest // UNIT), rest)

    def store(dst: ir.Value, scaled: list[ir.Value], n: int, count: int) -> None:
        if fast:
            pack_store(b, scaled, zp_s, qmin, qmax, signed, dst, count, halves=True)
            return
        for u in range(n):
            qa, qb = (b.trunc(round_clamp(b, f, zp, qmin, qmax, finite=True), b8(LANES))
                      for f in scaled[2 * u:2 * u + 2])
            q = b.shuffle_vector(qa, qb, natural)
            valid = min(16, count - 16 * u)
            if valid == 16:
                store_vec(q, at(dst, 16 * u))
            else:
                for i in range(valid):
                    b.store(b.extract_element(q, ir.Constant(I32, i)), at(dst, 16 * u + i))

    c0, c1 = kc.task_range(c_)
    with kc.loop(c1, "c", start=c0) as c:
        wv = [[splat(b, kc.load(wpk, b.add(b.mul(c, kc.idx(kh_ * nq)), kc.idx(ky * nq + q))), LANES)
               for q in range(nq)] for ky in range(kh_)]
        bv = splat(b, kc.load(bias, c), LANES)
        mv = splat(b, kc.load(mult, c), LANES)
        plane = b.mul(c, kc.idx(h_ * w_))
        with kc.loop(-(-oh_ // band), "band") as bi:
            oh0 = b.mul(bi, kc.idx(band))
            left = b.sub(kc.idx(oh_), oh0)
            # Opaque: with a static band LLVM unrolled the copy and the rows and interleaved them,
            # so each row's loads met its own copy's stores still in flight (7x7 maps ran 7x slower).
            n_out = opaque(b, b.select(b.icmp_signed("<", left, kc.idx(band)), left, kc.idx(band)))
            n_in = b.add(b.mul(b.sub(n_out, kc.idx(1)), kc.idx(sh)), kc.idx(halo))
            with kc.loop(n_in, "r") as r:  # the band's input rows, padded, into the buffer
                ih = b.add(b.mul(oh0, kc.idx(sh)), b.sub(r, kc.idx(pt)))
                buf = at(rows, b.mul(r, kc.idx(rw)))
                fill, blank, join = (b.append_basic_block(t) for t in ("fill", "blank", "filled"))
                b.cbranch(b.icmp_unsigned("<", ih, kc.idx(h_)), fill, blank)  # ih < 0 wraps
                b.position_at_end(fill)
                store_vec(pad_v, buf)  # margin + left border (the copy overwrites from there)
                copy(at(kc.ptr(x), b.add(plane, b.mul(ih, kc.idx(w_)))), at(buf, MARGIN + pl), w_)
                store_vec(pad_v, at(buf, MARGIN + pl + w_))  # right border
                b.branch(join)
                b.position_at_end(blank)
                for i in range(0, rw, CHUNK):
                    store_vec(pad_v, at(buf, i))
                b.branch(join)
                b.position_at_end(join)
            # Reading the rows right after the copy stalls on store forwarding; per band that
            # hits the first output row only (a buffer per output row stalled on every row).
            def in_ptr(r: ir.Value) -> ir.Value:  # buffered input row r of the band
                return at(rows, b.add(b.mul(r, kc.idx(rw)), kc.idx(MARGIN)))

            def out_at(ohl: ir.Value) -> ir.Value:
                return b.add(b.mul(c, kc.idx(oh_ * ow_)), b.mul(b.add(oh0, ohl), kc.idx(ow_)))

            # Two output rows per pass at stride 1: they share KH - 1 input rows.
            pair = sh == 1
            n_pairs = b.lshr(n_out, kc.idx(1)) if pair else kc.idx(0)
            if pair:
                with kc.loop(n_pairs, "ohp") as p:
                    ohl = b.mul(p, kc.idx(2))
                    ins = [in_ptr(b.add(ohl, kc.idx(r))) for r in range(halo + 1)]
                    taps = [ky * dh for ky in range(kh_)]
                    emit_rows(ins, [(out_at(ohl), taps), (out_at(b.add(ohl, kc.idx(1))), [t + 1 for t in taps])],
                              wv, bv, mv)
            with kc.loop(n_out, "oh", start=b.mul(n_pairs, kc.idx(2))) as ohl:
                ins = [in_ptr(b.add(b.mul(ohl, kc.idx(sh)), kc.idx(ky * dh))) for ky in range(kh_)]
                emit_rows(ins, [(out_at(ohl), list(range(kh_)))], wv, bv, mv)

"""Byte-quad input layout for the 4-way int8 dot products of `QConvDirect` (`dot` = "u8s8").

`QConvQuads(x) -> xq`: the quantized NCHW input as int32 words of 4 bytes, each byte
`x ^ flip` (flip 0x80 turns int8 into uint8 = x + 128), spatially padded with the byte `pad`
(the zero point in that encoding, so padding adds nothing once the bias holds
-zp * sum(w); see edgec/kernels/int8/quads.py). Two modes:
- "channels" (dense and grouped convs): xq[g][cq][h][w] = (x[4cq], x[4cq+1], x[4cq+2],
  x[4cq+3]) at pixel (h, w) of group g; a channel count that is not a multiple of 4 ends with
  `pad` bytes (their weights are 0).
- "spatial" (depthwise, kernel width <= 4): xq[c][h][w] = (x[w], x[w+dw], x[w+2dw], x[w+3dw])
  of padded row h (bytes past the kernel width are `pad`, their weights 0): one word holds a
  whole kernel row, so a 3x3 depthwise tap row is one vpmaddubsw per 8 output pixels.
A second input, when given, is the zero point at run time (dynamic quantization, channels mode
only): `pad` is then that byte ^ flip.
The interior is built 16 pixels at a time with vector byte shuffles (scalar tail).

The dot products themselves are edgec/codegen/isa/x86.py:dot4_u8s8 and isa/aarch64.py:sdot4.
"""

from __future__ import annotations

from llvmlite import ir

from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.types import I8, I32
from edgec.codegen.vector import splat, vtype
from edgec.kernels.generic.reduce import entry_alloca
from edgec.kernels.int8.spec import QUADS_CHUNK

CHUNK = QUADS_CHUNK  # pixels per vector step of the layout builder (the pass sizes buffers by it)



def _interleave(b: ir.IRBuilder, parts: list[ir.Value]) -> ir.Value:
    """4 x <16 x i8> -> <64 x i8>: byte j of word i is parts[j][i]."""
    und16 = ir.Constant(vtype(I8, 16), ir.Undefined)
    parts = parts + [und16] * (4 - len(parts))
    ab = b.shuffle_vector(parts[0], parts[1], ir.Constant(vtype(I32, 32), list(range(32))))
    cd = b.shuffle_vector(parts[2], parts[3], ir.Constant(vtype(I32, 32), list(range(32))))
    mask = [i + 16 * j for i in range(CHUNK) for j in range(4)]
    return b.shuffle_vector(ab, cd, ir.Constant(vtype(I32, 64), mask))


def _word(b: ir.IRBuilder, bytes_: list[ir.Value]) -> ir.Value:
    w = ir.Constant(I32, 0)
    for j, v in enumerate(bytes_):
        w = b.or_(w, b.shl(b.zext(v, I32), ir.Constant(I32, 8 * j)))
    return w


@lowering("QConvQuads")
def lower_qconv_quads(kc: KernelContext) -> None:
    x, xq = kc.inputs[0], kc.outputs[0]
    b = kc.b
    _, c_, h_, w_ = kc.shape(x)
    if kc.attrs.get("flatten"):
        h_, w_ = 1, h_ * w_
    gq, hp, wpa = kc.shape(xq)
    pt, pl = kc.attrs["pads"][0], kc.attrs["pads"][1]
    flip, pad = kc.attrs["flip"], kc.attrs["pad"]
    flip8 = ir.Constant(vtype(I8, CHUNK), [flip] * CHUNK)
    padb = ir.Constant(I8, pad)
    pad_word = ir.Constant(I32, pad * 0x01010101)
    padv = ir.Constant(vtype(I8, CHUNK), [pad] * CHUNK)
    if len(kc.inputs) > 1 and kc.inputs[1]:  # the zero point known at run time (channels mode)
        padb = b.xor(kc.load(kc.inputs[1], 0), ir.Constant(I8, flip))
        pad_word = b.mul(b.zext(padb, I32), ir.Constant(I32, 0x01010101))
        padv = splat(b, padb, CHUNK)

    def load_row(chan: ir.Value, h: int | ir.Value, w: ir.Value) -> ir.Value:
        off = b.add(kc.linear([chan, h], [h_ * w_, w_]) if not isinstance(h, int)
                    else b.mul(chan, kc.idx(h_ * w_)), w)
        v = b.load(b.bitcast(kc.gep(x, off), vtype(I8, CHUNK).as_pointer()), align=1)
        return b.xor(v, flip8) if flip else v

    def load_byte(chan: ir.Value, h: ir.Value, w: ir.Value) -> ir.Value:
        v = kc.load(x, b.add(kc.linear([chan, h], [h_ * w_, w_]), w))
        return b.xor(v, ir.Constant(I8, flip)) if flip else v

    def fill_words(start: ir.Value, count: int) -> None:
        if count > 0:
            with kc.loop(count, "pw") as i:
                kc.store(xq, b.add(start, i), pad_word)

    if kc.attrs["mode"] == "spatial":
        _spatial(kc, x, xq, (c_, h_, w_, hp, wpa, pt, pl), load_row, load_byte, padb)
        return
    groups = kc.attrs["group"]
    cg, cq_ = c_ // groups, gq // groups
    full, rem = divmod(cg, 4)
    bottom = hp - pt - h_
    chunks, tail = divmod(w_, CHUNK)

    def plane(g: ir.Value, cq: ir.Value, nvalid: int) -> None:
        base = b.mul(b.add(b.mul(g, kc.idx(cq_)), cq), kc.idx(hp * wpa))
        fill_words(base, pt * wpa)
        fill_words(b.add(base, kc.idx((pt + h_) * wpa)), bottom * wpa)
        chans = [b.add(b.mul(g, kc.idx(cg)), b.add(b.mul(cq, kc.idx(4)), kc.idx(j)))
                 for j in range(nvalid)]
        with kc.loop(h_, "h") as h:
            row = b.add(base, b.mul(b.add(h, kc.idx(pt)), kc.idx(wpa)))
            fill_words(row, pl)
            fill_words(b.add(row, kc.idx(pl + w_)), wpa - pl - w_)
            if chunks:
                with kc.loop(chunks, "wc") as wc:
                    w0 = b.mul(wc, kc.idx(CHUNK))
                    parts = [load_row(c, h, w0) for c in chans] + [padv] * (4 - nvalid)
                    dst = kc.gep(xq, b.add(row, b.add(w0, kc.idx(pl))))
                    b.store(_interleave(b, parts), b.bitcast(dst, vtype(I8, 4 * CHUNK).as_pointer()),
                            align=1)
            if tail:
                with kc.loop(tail, "wt") as wt:
                    w = b.add(wt, kc.idx(chunks * CHUNK))
                    bytes_ = [load_byte(c, h, w) for c in chans] + [padb] * (4 - nvalid)
                    kc.store(xq, b.add(row, b.add(w, kc.idx(pl))), _word(b, bytes_))

    if groups == 1:  # threads split the planes of channel quads (the partial one: the last task)
        q0, q1 = kc.task_range(full)
        g0 = kc.idx(0)
        if full:
            with kc.loop(q1, "cq", start=q0) as cq:
                plane(g0, cq, 4)
        if rem:
            last, after = b.append_basic_block("lastq"), b.append_basic_block("afterq")
            b.cbranch(kc.is_last_task(), last, after)
            b.position_at_end(last)
            plane(g0, kc.idx(full), rem)
            b.branch(after)
            b.position_at_end(after)
        return
    g0, g1 = kc.task_range(groups)
    with kc.loop(g1, "g", start=g0) as g:
        if full:
            with kc.loop(full, "cq") as cq:
                plane(g, cq, 4)
        if rem:
            plane(g, kc.idx(full), rem)


def _spatial(kc: KernelContext, x: str, xq: str, dims: tuple[int, ...], load_row, load_byte,  # noqa: ANN001
             padb: ir.Constant) -> None:
    b = kc.b
    c_, h_, w_, hp, wpa, pt, pl = dims
    kw, dw = kc.attrs["quad_kernel"], kc.attrs["quad_dilation"]
    wp = kc.attrs["padded_width"]
    words = -(-wp // CHUNK) * CHUNK  # words built per row (<= wpa: the pass allocates that)
    size = words + 3 * dw + CHUNK
    buf = entry_alloca(kc, I8, size)
    padv = ir.Constant(vtype(I8, CHUNK), [padb.constant] * CHUNK)
    chunks, tail = divmod(w_, CHUNK)

    def at(off: ir.Value | int) -> ir.Value:
        return b.gep(buf, [off if isinstance(off, ir.Value) else kc.idx(off)], inbounds=True)

    c0, c1 = kc.task_range(c_)
    with kc.loop(c1, "c", start=c0) as c, kc.loop(hp, "hp") as hh:
        for i in range(0, size - CHUNK + 1, CHUNK):  # the row buffer starts as all padding
            b.store(padv, b.bitcast(at(i), padv.type.as_pointer()), align=1)
        for i in range(size - size % CHUNK, size):
            b.store(padb, at(i))
        h = b.sub(hh, kc.idx(pt))
        inside = b.and_(b.icmp_signed(">=", h, kc.idx(0)), b.icmp_signed("<", h, kc.idx(h_)))
        copy_bb, words_bb = b.append_basic_block("copy"), b.append_basic_block("words")
        b.cbranch(inside, copy_bb, words_bb)
        b.position_at_end(copy_bb)
        if chunks:
            with kc.loop(chunks, "wc") as wc:
                w0 = b.mul(wc, kc.idx(CHUNK))
                v = load_row(c, h, w0)
                b.store(v, b.bitcast(at(b.add(w0, kc.idx(pl))), v.type.as_pointer()), align=1)
        if tail:
            with kc.loop(tail, "wt") as wt:
                w = b.add(wt, kc.idx(chunks * CHUNK))
                b.store(load_byte(c, h, w), at(b.add(w, kc.idx(pl))))
        b.branch(words_bb)
        b.position_at_end(words_bb)
        row = b.mul(b.add(b.mul(c, kc.idx(hp)), hh), kc.idx(wpa))
        with kc.loop(words // CHUNK, "wq") as wq:
            w0 = b.mul(wq, kc.idx(CHUNK))
            parts = [b.load(b.bitcast(at(b.add(w0, kc.idx(j * dw))), padv.type.as_pointer()), align=1)
                     for j in range(kw)]
            dst = kc.gep(xq, b.add(row, w0))
            b.store(_interleave(b, parts + [padv] * (4 - kw)),
                    b.bitcast(dst, vtype(I8, 4 * CHUNK).as_pointer()), align=1)

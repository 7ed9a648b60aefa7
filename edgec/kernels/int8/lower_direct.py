"""Integer convolution with constant weights: the fast path of QConv (`prepare-qconv` pass).

`QConvPrep(x) -> xp`: the quantized NCHW input minus its zero point as int16, zero padded
spatially, with pairs of input channels interleaved: xp[g][cp][h][w] is an int32 holding the
int16 pair (x[2cp] - zp, x[2cp+1] - zp) of group g (an odd channel count pads with a zero
channel). Differences of two 8-bit values fit int16 exactly, so nothing saturates.

`QConvDirect(xp, w, bias, mult, y_zp)`: the register-blocked direct conv of conv_direct.py on
those pairs. A tile is MR output channels x NRV vectors of one output row; each kernel tap loads
NRV vectors of input pairs and multiplies them with a broadcast weight pair per output channel:
`pmaddwd` (int16 x int16, adjacent products summed into int32) on x86, smull/smlal + addp on
aarch64 (LLVM picks both from the same sext/mul/add IR). int32 accumulation is exact; the
epilogue adds the int32 bias and requantizes (float multiplier x_scale * w_scale / y_scale, round
half to even, + zero point, clamp) like onnxruntime; with `requant` False (ConvInteger, the
zero point known only at run time: edgec/kernels/int8/dynamic_conv.py) it stores the int32 sums.
With `dot` = "u8s8" (x86 AVX2, weights in [-64, 64]) the words are byte quads from QConvQuads
and each product is a 4-way vpmaddubsw + vpmaddwd dot (qconv_quads.py): 4x the MACs per op.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from edgec.codegen.isa.aarch64 import sdot4
from edgec.codegen.isa.x86 import dot4_u8s8, dot4_vnni
from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.loops import for_range_carried, opaque
from edgec.codegen.types import F32, I8, I16, I32, llvm_type
from edgec.codegen.vector import splat, vtype
from edgec.kernels.generic.quant import round_clamp
from edgec.kernels.int8.requant_x86 import pack_bytes, pack_store


@lowering("QConvPrep")
def lower_qconv_prep(kc: KernelContext) -> None:
    x, xz = kc.inputs[:2]
    xp = kc.outputs[0]
    b = kc.b
    n_, c_, h_, w_ = kc.shape(x)
    if kc.attrs.get("flatten"):  # 1x1 stride 1: the plane is one long row
        h_, w_ = 1, h_ * w_
    gcp, hp, wp = kc.shape(xp)
    groups = kc.attrs["group"]
    cg, cp_ = c_ // groups, gcp // groups
    pt, pl = kc.attrs["pads"][0], kc.attrs["pads"][1]
    signed = kc.dtype(x).name == "int8"
    zp = kc.load(xz, 0) if xz else ir.Constant(llvm_type(kc.dtype(x)), 0)
    zp = b.sext(zp, I32) if signed else b.zext(zp, I32)

    def val(c: ir.Value, h: ir.Value, w: ir.Value) -> ir.Value:
        v = kc.load(x, kc.linear([c, h, w], [h_ * w_, w_, 1]))
        v = b.sext(v, I32) if signed else b.zext(v, I32)
        return b.zext(b.trunc(b.sub(v, zp), I16), I32)

    def zeros(start: ir.Value, count: int) -> None:
        if count > 0:
            with kc.loop(count, "z") as i:
                kc.store(xp, b.add(start, i), ir.Constant(I32, 0))

    bottom = hp - pt - h_
    with kc.loop(groups, "g") as g, kc.loop(cp_, "cp") as cp:
        plane = b.mul(b.add(b.mul(g, kc.idx(cp_)), cp), kc.idx(hp * wp))
        zeros(plane, pt * wp)  # only the padding is zeroed: the interior is written below
        zeros(b.add(plane, kc.idx((pt + h_) * wp)), bottom * wp)
        c0 = b.add(b.mul(g, kc.idx(cg)), b.mul(cp, kc.idx(2)))
        paired, single = b.append_basic_block("paired"), b.append_basic_block("single")
        done = b.append_basic_block("prepped")
        b.cbranch(b.icmp_signed("<", b.add(b.mul(cp, kc.idx(2)), kc.idx(1)), kc.idx(cg)), paired, single)
        for bb, pair in ((paired, True), (single, False)):  # an odd channel count ends unpaired
            b.position_at_end(bb)
            with kc.loop(h_, "h") as h:
                row = b.add(plane, b.mul(b.add(h, kc.idx(pt)), kc.idx(wp)))
                zeros(row, pl)
                zeros(b.add(row, kc.idx(pl + w_)), wp - pl - w_)
                with kc.loop(w_, "w") as w:
                    v = val(c0, h, w)
                    if pair:
                        v = b.or_(v, b.shl(val(b.add(c0, kc.idx(1)), h, w), ir.Constant(I32, 16)))
                    kc.store(xp, b.add(row, b.add(w, kc.idx(pl))), v)
            b.branch(done)
        b.position_at_end(done)


def _madd(b: ir.IRBuilder, xv: ir.Value, wv: ir.Value, lanes: int) -> ir.Value:
    """Pairwise int16 multiply-add: lane i = x.lo*w.lo + x.hi*w.hi (pmaddwd / smull+addp)."""
    t16, t32 = vtype(I16, 2 * lanes), vtype(I32, 2 * lanes)
    prod = b.mul(b.sext(b.bitcast(xv, t16), t32), b.sext(b.bitcast(wv, t16), t32), flags=["nsw"])
    und = ir.Constant(t32, ir.Undefined)
    even = b.shuffle_vector(prod, und, ir.Constant(vtype(I32, lanes), list(range(0, 2 * lanes, 2))))
    odd = b.shuffle_vector(prod, und, ir.Constant(vtype(I32, lanes), list(range(1, 2 * lanes, 2))))
    return b.add(even, odd, flags=["nsw"])


@lowering("QConvDirect")
def lower_qconv_direct(kc: KernelContext) -> None:
    xp, wpk, bias, mult, yz = kc.inputs[:5]
    y = kc.outputs[0]
    b = kc.b
    gcp, hp, wpw = kc.shape(xp)
    _, m_, oh_, ow_ = kc.shape(y)
    if kc.attrs.get("flatten"):
        oh_, ow_ = 1, oh_ * ow_
    kh_, kw_ = kc.attrs["kernel"]
    sh, sw = kc.attrs["strides"]
    dh, dw = kc.attrs["dilations"]
    groups = kc.attrs["group"]
    sched = kc.attrs["schedule"]
    mr, lanes = sched["mr"], sched["lanes"]
    nr = sched["nrv"] * lanes
    cp_, mg = gcp // groups, m_ // groups
    ocb_count = -(-mg // mr)
    qmin, qmax = kc.attrs["qmin"], kc.attrs["qmax"]
    vty = vtype(I32, lanes)
    madd = {"u8s8": dot4_u8s8, "vnni": dot4_vnni, "s8s8": sdot4}.get(kc.attrs.get("dot"), _madd)
    requant = kc.attrs.get("requant", True)  # False: the exact int32 sums (ConvInteger)
    if requant:
        zp = kc.load(yz, 0) if yz else ir.Constant(llvm_type(kc.dtype(y)), 0)
        zp_s = b.sext(zp, I32) if kc.dtype(y).name == "int8" else b.zext(zp, I32)
        zp = splat(b, zp_s, lanes)
    fast = bool(kc.attrs.get("pack_requant"))

    def load_x(base: ir.Value, off: ir.Value) -> ir.Value:
        ptr = b.gep(base, [off], inbounds=True)
        if sw == 1:
            return b.load(b.bitcast(ptr, vty.as_pointer()), align=4)
        wide = b.load(b.bitcast(ptr, vtype(I32, lanes * sw).as_pointer()), align=4)
        mask = ir.Constant(vtype(I32, lanes), [i * sw for i in range(lanes)])
        return b.shuffle_vector(wide, ir.Constant(wide.type, ir.Undefined), mask)

    tap_off = kc.table(np.array([ky * dh * wpw + kx * dw for ky in range(kh_) for kx in range(kw_)],
                                np.int64 if kc.isize.width == 64 else np.int32), "taps")

    def tile(grp: ir.Value, oh: ir.Value, ow0: ir.Value, ocb: ir.Value, width: int) -> None:
        nrv = -(-width // lanes)
        # The input strip is the same for every output-channel block, and LLVM would hoist its
        # loads out of the block loop; with a short reduction (16 -> 96 1x1: 8 vectors) they
        # spill and reload from the stack. An opaque copy of the base pointer per tile keeps
        # the loads where they are used (no instruction is emitted for it).
        x_base = opaque(b, kc.ptr(xp))
        gb = b.add(b.mul(grp, kc.idx(ocb_count)), ocb)
        base_w = b.mul(gb, kc.idx(cp_ * kh_ * kw_ * mr))
        # the sums start at the int32 bias (one add per vector less in the epilogue)
        init = [splat(b, kc.load(bias, b.add(b.mul(gb, kc.idx(mr)), kc.idx(m))), lanes)
                for m in range(mr) for _ in range(nrv)]
        # an opaque trip count too: a fully unrolled short reduction (4 steps) had LLVM load all
        # 20 weight words into general registers up front and spill them
        with for_range_carried(b, opaque(b, kc.idx(cp_)), kc.isize, init, "cp") as loop:
            cp = loop.index
            x_ch = b.add(b.mul(b.add(b.mul(grp, kc.idx(cp_)), cp), kc.idx(hp * wpw)),
                         b.add(b.mul(oh, kc.idx(sh * wpw)), b.mul(ow0, kc.idx(sw))))
            w_cp = b.add(base_w, b.mul(cp, kc.idx(kh_ * kw_ * mr)))
            # The taps are a loop too (offsets from a table): one tap per iteration keeps LLVM
            # from reassociating the int32 sums of several taps into trees that spill.
            with for_range_carried(b, kh_ * kw_, kc.isize, loop.values, "tap") as taps:
                cur = [taps.values[m * nrv:(m + 1) * nrv] for m in range(mr)]
                start = b.add(x_ch, b.load(b.gep(tap_off, [taps.index], inbounds=True)))
                xs = [load_x(x_base, b.add(start, kc.idx(v * lanes * sw))) for v in range(nrv)]
                woff = b.add(w_cp, b.mul(taps.index, kc.idx(mr)))
                for m in range(mr):
                    wv = splat(b, kc.load(wpk, b.add(woff, kc.idx(m))), lanes)
                    for v in range(nrv):
                        cur[m][v] = b.add(cur[m][v], madd(b, xs[v], wv, lanes), flags=["nsw"])
                taps.next = [a for r in cur for a in r]
            loop.next = taps.values
        sums = [loop.values[m * nrv:(m + 1) * nrv] for m in range(mr)]
        signed = kc.dtype(y).name == "int8"

        def valid(m: int) -> ir.Value:
            return b.icmp_signed("<", b.add(b.mul(ocb, kc.idx(mr)), kc.idx(m)), kc.idx(mg))

        def out_row(m: int) -> ir.Value:
            oc = b.add(b.mul(grp, kc.idx(mg)), b.add(b.mul(ocb, kc.idx(mr)), kc.idx(m)))
            return b.add(b.mul(oc, kc.idx(oh_ * ow_)), b.add(b.mul(oh, kc.idx(ow_)), ow0))

        def scaled(m: int) -> list[ir.Value]:
            mv = splat(b, kc.load(mult, b.add(b.mul(gb, kc.idx(mr)), kc.idx(m))), lanes)
            return [b.fmul(b.sitofp(sums[m][v], vtype(F32, lanes)), mv) for v in range(nrv)]

        def row(m: int) -> None:
            store_bb, next_bb = b.append_basic_block("store"), b.append_basic_block("next")
            b.cbranch(valid(m), store_bb, next_bb)
            b.position_at_end(store_bb)
            if not requant:
                for v in range(nrv):
                    dst = kc.gep(y, b.add(out_row(m), kc.idx(v * lanes)))
                    count = min(lanes, width - v * lanes)
                    if count == lanes:
                        b.store(sums[m][v], b.bitcast(dst, vty.as_pointer()), align=4)
                    for i in range(count if count < lanes else 0):
                        b.store(b.extract_element(sums[m][v], ir.Constant(I32, i)),
                                b.gep(dst, [ir.Constant(I32, i)], inbounds=True))
            elif fast:  # x86 packs: the row's NRV vectors become one byte vector
                pack_store(b, scaled(m), zp_s, qmin, qmax, signed, kc.gep(y, out_row(m)), width)
            else:
                for v, f in enumerate(scaled(m)):
                    q = b.trunc(round_clamp(b, f, zp, qmin, qmax, finite=True), vtype(I8, lanes))
                    dst = kc.gep(y, b.add(out_row(m), kc.idx(v * lanes)))
                    count = min(lanes, width - v * lanes)
                    if count == lanes:
                        b.store(q, b.bitcast(dst, vtype(I8, lanes).as_pointer()), align=1)
                    else:
                        for i in range(count):
                            b.store(b.extract_element(q, ir.Constant(I32, i)),
                                    b.gep(dst, [ir.Constant(I32, i)], inbounds=True))
            b.branch(next_bb)
            b.position_at_end(next_bb)

        # Two whole 16-pixel rows share one pack (4 vectors -> 32 bytes, half to each row): a
        # saturating pack, zero point add and clamp per two rows instead of per row.
        paired = fast and nrv == 2 and width == 2 * lanes
        m = 0
        while m < mr:
            if not (paired and m + 1 < mr):
                row(m)
                m += 1
                continue
            both, split, done = (b.append_basic_block(t) for t in ("rows2", "rows1", "rowsdone"))
            b.cbranch(valid(m + 1), both, split)
            b.position_at_end(both)
            q = pack_bytes(b, scaled(m) + scaled(m + 1), zp_s, qmin, qmax, signed)
            for r in range(2):
                half = b.shuffle_vector(q, q, ir.Constant(vtype(I32, 16), list(range(16 * r, 16 * r + 16))))
                b.store(half, b.bitcast(kc.gep(y, out_row(m + r)), half.type.as_pointer()), align=1)
            b.branch(done)
            b.position_at_end(split)
            row(m)
            row(m + 1)
            b.branch(done)
            b.position_at_end(done)
            m += 2

    full, rem = divmod(ow_, nr)
    if oh_ >= 2:
        (r0, r1), (c0, c1) = kc.task_range(oh_), (kc.idx(0), kc.idx(ocb_count))
    else:
        (r0, r1), (c0, c1) = (kc.idx(0), kc.idx(oh_)), kc.task_range(ocb_count)
    with kc.loop(groups, "grp") as grp, kc.loop(r1, "oh", start=r0) as oh:
        if full:
            with kc.loop(full, "owt") as owt, kc.loop(c1, "ocb", start=c0) as ocb:
                tile(grp, oh, b.mul(owt, kc.idx(nr)), ocb, nr)
        if rem:
            with kc.loop(c1, "ocbr", start=c0) as ocb:
                tile(grp, oh, kc.idx(full * nr), ocb, rem)

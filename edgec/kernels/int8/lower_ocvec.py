"""Output-channel-vectorized int8 convolution on byte quads (x86 AVX2 u8s8): `QConvOcvec`.

`QConvOcvec(xq, w, bias, mult, y_zp)` reads the "channels" quad layout of QConvQuads
(xq[cq][h][w] = 4 input channels of one padded pixel as a u8 word) and computes a tile of MR
output pixels of one row x NRV vectors of 8 output channels. Each step (one channel quad, one
kernel tap) broadcasts MR input words and loads NRV weight vectors (8 output channels x 4
input channels, packed [ocb][cq][kh][kw][8*NRV][4] at build time) and does MR x NRV
vpmaddubsw + vpmaddwd dots, or vpdpbusd with VNNI (edgec/codegen/isa/x86.py: dot4_x86).

Why a second layout next to QConvDirect's pixel vectors: a strided conv there loads
`stride` vectors and permutes them per tap, and a 14- or 7-wide row leaves lanes idle; here a
pixel is a broadcast, so strides and odd widths cost nothing (ResNet-18's 3x3 stride-2 convs
ran at 46-64 GMAC/s pixel-vectorized vs onnxruntime's 90). The epilogue requantizes 8 output
channels per vector and transposes the tile to NCHW rows with one byte shuffle.

With `requant` False (ConvInteger of a dynamically quantized model, made by
edgec/kernels/int8/dynamic_conv.py) the inputs are (xq, w, sum_w, x_zp): the input zero point
arrives at run time, the bias is -pad * sum_w per output channel (pad = x_zp ^ flip, the byte
QConvQuads padded with), and the exact int32 sums are stored, transposed the same way.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from edgec.codegen.isa.x86 import dot4_x86
from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.loops import for_range_carried, opaque
from edgec.codegen.types import F32, I8, I32, llvm_type
from edgec.codegen.vector import concat_vectors, splat, vtype
from edgec.kernels.generic.quant import round_clamp
from edgec.kernels.int8.requant_x86 import pack_bytes

LANES = 8




@lowering("QConvOcvec")
def lower_qconv_ocvec(kc: KernelContext) -> None:
    xq, wpk, bias, mult, yz = (kc.inputs + [""] * 5)[:5]
    requant = kc.attrs.get("requant", True)
    y = kc.outputs[0]
    b = kc.b
    dot4 = dot4_x86(kc.attrs.get("dot", "u8s8"))
    cq_, hp, wpw = kc.shape(xq)
    _, m_, oh_, ow_ = kc.shape(y)
    if kc.attrs.get("flatten"):  # 1x1 stride 1: the plane is one row of the quad layout
        oh_, ow_ = 1, oh_ * ow_
    kh_, kw_ = kc.attrs["kernel"]
    sh, sw = kc.attrs["strides"]
    dh, dw = kc.attrs["dilations"]
    sched = kc.attrs["schedule"]
    mr, nrv = sched["mr"], sched["nrv"]
    ocw = nrv * LANES  # output channels per block
    ocb_count = m_ // ocw
    taps = kh_ * kw_
    qmin, qmax = kc.attrs.get("qmin", 0), kc.attrs.get("qmax", 0)
    vty = vtype(I32, LANES)
    signed = kc.dtype(y).name == "int8"
    fast = bool(kc.attrs.get("pack_requant"))
    if requant:
        zp = kc.load(yz, 0) if yz else ir.Constant(llvm_type(kc.dtype(y)), 0)
        zp_s = b.sext(zp, I32) if signed else b.zext(zp, I32)
        zp = splat(b, zp_s, LANES)
    else:  # int32 out (ConvInteger); inputs (xq, w, sum_w, x_zp): bias = -pad value * sum_w
        pad = b.zext(b.xor(kc.load(mult, 0), ir.Constant(I8, kc.attrs["flip"])), I32)
        neg_pad = splat(b, b.sub(ir.Constant(I32, 0), pad), LANES)
    tap_off = kc.table(np.array([ky * dh * wpw + kx * dw for ky in range(kh_) for kx in range(kw_)],
                                np.int64 if kc.isize.width == 64 else np.int32), "taps")

    def wvec(off: ir.Value) -> ir.Value:
        return b.load(b.bitcast(kc.gep(wpk, off), vty.as_pointer()), align=4)

    def tile(ocb: ir.Value, oh: ir.Value, ow0: ir.Value, width: int) -> None:
        zero = ir.Constant(vty, [0] * LANES)
        row0 = b.add(b.mul(oh, kc.idx(sh * wpw)), b.mul(ow0, kc.idx(sw)))
        w_blk = b.mul(ocb, kc.idx(cq_ * taps * ocw))
        # opaque trip count and input pointer (qconv_direct.opaque): no full unroll of a short
        # reduction and no hoisting of the input words out of the block loops (both spilled)
        x0 = opaque(b, kc.ptr(xq))
        with for_range_carried(b, opaque(b, kc.idx(cq_)), kc.isize, [zero] * (width * nrv), "cq") as loop:
            x_ch = b.add(b.mul(loop.index, kc.idx(hp * wpw)), row0)
            w_cq = b.add(w_blk, b.mul(loop.index, kc.idx(taps * ocw)))
            # One tap per iteration (offsets from a table) keeps the int32 sums as plain chains.
            # On 16 registers its trip count is opaque (LLVM keeps it a loop): LLVM unrolled the 9
            # taps of a narrow tail tile (3 pixels after 5 x 5 of a 28-wide row) and the sums it
            # reassociated spilled 3 accumulators (AVX2 u8s8); as a loop none, and the layers run
            # as fast (0.99-1.00x, 14..56-wide rows). Rows of one full tile and a tail (7 = 4 + 3:
            # ResNet-18's last stage) keep the unrolled tail: there it is 3/7 of the work and,
            # spills and all, faster (the loop: 1.02-1.03x per layer). 32 registers (VNNI) do
            # not spill unrolled, and a loop there ran 1.10-1.20x slower.
            unrolled = kc.target.vector_registers > 16 or (width < mr and ow_ < 2 * mr)
            with for_range_carried(b, kc.idx(taps) if unrolled else opaque(b, kc.idx(taps)), kc.isize,
                                   loop.values, "tap") as tp:
                start = b.add(x_ch, b.load(b.gep(tap_off, [tp.index], inbounds=True)))
                woff = b.add(w_cq, b.mul(tp.index, kc.idx(ocw)))
                ws = [wvec(b.add(woff, kc.idx(v * LANES))) for v in range(nrv)]
                acc = list(tp.values)
                for p in range(width):
                    xv = splat(b, b.load(b.gep(x0, [b.add(start, kc.idx(p * sw))], inbounds=True)), LANES)
                    for v in range(nrv):
                        acc[p * nrv + v] = b.add(acc[p * nrv + v], dot4(b, xv, ws[v], LANES), flags=["nsw"])
                tp.next = acc
            loop.next = tp.values
        sums = loop.values
        out_px = b.add(b.mul(oh, kc.idx(ow_)), ow0)
        for v in range(nrv):
            oc0 = b.add(b.mul(ocb, kc.idx(ocw)), kc.idx(v * LANES))
            bv = b.load(b.bitcast(kc.gep(bias, oc0), vty.as_pointer()), align=4)
            if not requant:
                bv = b.mul(bv, neg_pad)
                qs = [b.add(sums[p * nrv + v], bv) for p in range(width)]
            else:
                mv = b.load(b.bitcast(kc.gep(mult, oc0), vtype(F32, LANES).as_pointer()), align=4)
                scaled = [b.fmul(b.sitofp(b.add(sums[p * nrv + v], bv), vtype(F32, LANES)), mv)
                          for p in range(width)]
                if fast:  # x86 packs, 4 pixels at a time (a short chunk repeats its last pixel)
                    chunks = [scaled[i:i + 4] for i in range(0, width, 4)]
                    qs = [pack_bytes(b, ch + ch[-1:] * (4 - len(ch)), zp_s, qmin, qmax, signed) for ch in chunks]
                else:
                    qs = [b.trunc(round_clamp(b, f, zp, qmin, qmax, finite=True), vtype(I8, LANES))
                          for f in scaled]
            # pixel-major values -> channel-major: row l holds channel oc0 + l's `width` pixels
            allq = concat_vectors(b, qs)
            for lane in range(LANES):
                row = b.shuffle_vector(allq, allq, ir.Constant(vtype(I32, width),
                                                               [p * LANES + lane for p in range(width)]))
                dst = kc.gep(y, b.add(b.mul(b.add(oc0, kc.idx(lane)), kc.idx(oh_ * ow_)), out_px))
                if width == 1:
                    b.store(b.extract_element(row, ir.Constant(I32, 0)), dst)
                else:
                    b.store(row, b.bitcast(dst, row.type.as_pointer()), align=1)

    full, rem = divmod(ow_, mr)
    if oh_ >= 2:
        (r0, r1), (c0, c1) = kc.task_range(oh_), (kc.idx(0), kc.idx(ocb_count))
    else:
        (r0, r1), (c0, c1) = (kc.idx(0), kc.idx(oh_)), kc.task_range(ocb_count)
    # output-channel blocks outermost: one block's weights stay in L2 across the rows
    with kc.loop(c1, "ocb", start=c0) as ocb, kc.loop(r1, "oh", start=r0) as oh:
        if full:
            with kc.loop(full, "owt") as owt:
                tile(ocb, oh, b.mul(owt, kc.idx(mr)), mr)
        if rem:
            tile(ocb, oh, kc.idx(full * mr), rem)

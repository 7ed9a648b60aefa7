"""Depthwise convolution of a small padded map through a zero-padded copy of each channel.

On maps of up to PADDED_MAX_WIDTH output columns the border split of lower.py costs more than
the interior: a 5x5 window with padding 2 over a 14-wide row leaves 10 columns to the vector
tile and 4 to scalar code (up to 20 scalar loads and multiply-adds each), and the top and bottom
border rows repeat that (MediaPipe's pose detector: its 5x5 depthwise layers ran at 9 GMAC/s).
Here each channel is first copied into a stack buffer whose borders stay zero, so every output
row is whole vectors with every tap valid: one row per step, NRV vectors wide (the whole row).
Rows store whole vectors, overhanging into the next rows of the same plane (written after
them); the last rows of a plane, whose vectors would reach the next plane (maybe another
thread's), store only their own lanes.
"""

from __future__ import annotations

from llvmlite import ir

from edgec.codegen.common import vector_activation
from edgec.codegen.kernel import KernelContext
from edgec.codegen.loops import opaque
from edgec.codegen.types import I32, llvm_type
from edgec.codegen.vector import Vec
from edgec.kernels.generic.reduce import entry_alloca

PADDED_MAX_WIDTH = 32  # output columns; wider rows keep the border split (its share is small)
MAX_ROW_VECTORS = 8
MAX_STACK = 128 * 1024  # bytes of the per-channel copy (threads on phones have small stacks)


def use_padded(kc: KernelContext) -> bool:
    """Small maps, and 5x5 (or wider) windows on any map whose channel copy fits MAX_STACK:
    a 3x3 on a 56- or 112-wide row was faster with the border split (155 vs 187 us at
    144 x 56 x 56), a 5x5 was not (263 vs 336 us at 96 x 56 x 56; 615 vs 880 at 144 x 112 x 112
    stride 2)."""
    if kc.node.op != "DepthwiseDirect" or kc.dtype(kc.inputs[0]).name not in ("float32", "float16") \
            or not any(kc.attrs.get("pads", [0, 0, 0, 0])):
        return False
    ow, kw = kc.shape(kc.outputs[0])[3], kc.attrs["kernel"][1]
    size = kc.dtype(kc.inputs[0]).itemsize
    return (ow <= PADDED_MAX_WIDTH or kw >= 5) and size * _buffer_floats(kc) <= MAX_STACK


def _buffer_floats(kc: KernelContext) -> int:
    return _geometry(kc)[2]


def _geometry(kc: KernelContext) -> tuple[int, int, int]:
    """(phases, floats per phase of a padded row, floats of the whole channel buffer)."""
    _, _, h_, w_ = kc.shape(kc.inputs[0])
    _, _, oh_, ow_ = kc.shape(kc.outputs[0])
    kh_, kw_ = kc.attrs["kernel"]
    sh, sw = kc.attrs["strides"]
    dh, dw = kc.attrs["dilations"]
    pt, pl = kc.attrs["pads"][0], kc.attrs["pads"][1]
    lanes = kc.attrs["schedule"]["lanes"]
    nrv = -(-ow_ // lanes)
    # Stride 2: the copy splits each padded row into its even and odd columns (two "phases"),
    # so every tap reads contiguous lanes; strided loads cost a permute per vector per tap (25
    # per output vector of a 5x5), the split one per two input vectors (144 x 56 x 56 -> 28 x 28
    # 5x5: 259 -> 125 us).
    phases = 2 if sw == 2 else 1
    if phases == 2:
        wpp = max(-(-(pl + w_) // 2), nrv * lanes + (kw_ - 1) * dw // 2)
    else:  # every read in bounds: the widest strided load of the last vector
        wpp = max(pl + w_, (nrv * lanes - 1) * sw + (kw_ - 1) * dw + 1) + (sw - 1) * lanes
    wpp = -(-wpp // lanes) * lanes
    hp = max(pt + h_, (oh_ - 1) * sh + (kh_ - 1) * dh + 1)
    return phases, wpp, hp * phases * wpp


def lower_padded_depthwise(kc: KernelContext) -> None:
    x, w, bias = kc.inputs[:3]
    y = kc.outputs[0]
    b = kc.b
    n_, c_, h_, w_ = kc.shape(x)
    _, _, oh_, ow_ = kc.shape(y)
    kh_, kw_ = kc.attrs["kernel"]
    sh, sw = kc.attrs["strides"]
    dh, dw = kc.attrs["dilations"]
    pt, pl, _, _ = kc.attrs["pads"]
    lanes = kc.attrs["schedule"]["lanes"]
    act = kc.attrs.get("activation")
    ety = llvm_type(kc.dtype(x))  # fp32, or fp16 (`--precision fp16`)
    vec = Vec(b, lanes, ety)
    nrv = -(-ow_ // lanes)
    # Wide rows go in chunks of vectors, all but the last in a loop: with a whole row's
    # accumulators live beside the KH*KW weight broadcasts, LLVM spilled (5x5 on an 80-wide
    # row: 30 q registers per row in fp32, 126 in fp16). The broadcasts stay hoisted out of
    # the chunk loop, so a chunk is what fits beside them.
    by_lane = kh_ * kw_ > 9
    most = 4 if kc.target.arch == "armv7" else MAX_ROW_VECTORS  # 16 q registers, weights included
    chunk = most if by_lane else max(2, min(most, 30 - kh_ * kw_))
    phases, wpp, size = _geometry(kc)
    wp = phases * wpp  # one padded row
    hp = size // wp
    buf = entry_alloca(kc, ety, hp * wp)
    zero = vec.zeros()
    with kc.loop(hp * wp // lanes, "z") as i:  # the borders stay zero for every channel
        vec.store(zero, b.gep(buf, [b.mul(i, kc.idx(lanes))], inbounds=True))
    full, tail = divmod(w_, lanes * phases)
    und = ir.Constant(ir.VectorType(ety, 2 * lanes), ir.Undefined)

    def put(v: ir.Value, at: ir.Value) -> None:
        vec.store(v, b.gep(buf, [at], inbounds=True))

    def copy_plane(plane: ir.Value) -> None:
        with kc.loop(h_, "ch") as h:
            src = b.add(plane, b.mul(h, kc.idx(w_)))
            row = b.mul(b.add(h, kc.idx(pt)), kc.idx(wp))
            for v in range(full):
                j0 = v * lanes * phases
                if phases == 1:
                    put(vec.load(kc.gep(x, b.add(src, kc.idx(j0)))), b.add(row, kc.idx(pl + j0)))
                    continue
                pair = vec.load(kc.gep(x, b.add(src, kc.idx(j0))), 2 * lanes)
                for k in range(2):  # input columns j0 + 2i + k -> phase (pl + k) % 2
                    part = b.shuffle_vector(pair, und, ir.Constant(ir.VectorType(I32, lanes),
                                                                   list(range(k, 2 * lanes, 2))))
                    put(part, b.add(row, kc.idx((pl + k) % 2 * wpp + (pl + j0 + k) // 2)))
            if phases == 1 and tail:
                vec.store_lanes(vec.load(kc.gep(x, b.add(src, kc.idx(full * lanes)))),
                                b.gep(buf, [b.add(row, kc.idx(pl + full * lanes))], inbounds=True), tail)
            for j in range(full * lanes * phases, w_ if phases == 2 else 0):
                b.store(kc.load(x, b.add(src, kc.idx(j))),
                        b.gep(buf, [b.add(row, kc.idx((pl + j) % 2 * wpp + (pl + j) // 2))], inbounds=True))

    def out_row(c: ir.Value, out: ir.Value, oh: ir.Value, whole: bool) -> None:
        looped = (nrv - 1) // chunk  # chunks of whole vectors, in a loop LLVM may not unroll
        if looped:
            with kc.loop(opaque(b, kc.idx(looped)), "vc") as k:
                out_chunk(c, out, oh, True, range(chunk), b.mul(k, kc.idx(chunk * lanes)))
        out_chunk(c, out, oh, whole, range(looped * chunk, nrv), kc.idx(0))

    def out_chunk(c: ir.Value, out: ir.Value, oh: ir.Value, whole: bool, vs: range, col: ir.Value) -> None:
        """Output vectors `vs` of one row, from column `col` on: all taps into their
        accumulators, then the stores."""
        accs = {v: vec.splat(kc.load(bias, c)) for v in vs}
        # the KH*KW weights as lanes of vector loads (`fmla v, v, v.s[k]` by element): 7 q
        # registers for a 5x5 in fp32, 4 in fp16, instead of 25 broadcasts
        weights = vec.splats(kc.gep(w, b.mul(c, kc.idx(kh_ * kw_))), kh_ * kw_, by_lane=by_lane)
        for kh in range(kh_):
            row = b.add(b.mul(b.add(b.mul(oh, kc.idx(sh)), kc.idx(kh * dh)), kc.idx(wp)),
                        col if phases == 2 else b.mul(col, kc.idx(sw)))
            for kw in range(kw_):
                wb = next(weights)
                for v in vs:
                    if phases == 2:
                        at = b.add(row, kc.idx(kw * dw % 2 * wpp + v * lanes + kw * dw // 2))
                        xv = vec.load(b.gep(buf, [at], inbounds=True))
                    else:
                        at = b.add(row, kc.idx(kw * dw + v * lanes * sw))
                        xv = vec.load_strided(b.gep(buf, [at], inbounds=True), sw)
                    accs[v] = vec.fma(wb, xv, accs[v])
        dst = b.add(b.add(out, b.mul(oh, kc.idx(ow_))), col)
        for v in vs:
            val = vector_activation(b, accs[v], act, lanes)
            ptr = kc.gep(y, b.add(dst, kc.idx(v * lanes)))
            count = min(lanes, ow_ - v * lanes)
            vec.store(val, ptr) if whole else vec.store_lanes(val, ptr, count)

    # rows whose whole-vector stores end inside their own plane (what they overwrite past the
    # row, later rows of the plane write again)
    safe = min(oh_, max(0, (oh_ * ow_ - nrv * lanes) // ow_ + 1))
    c0, c1 = kc.task_range(c_)  # threads split the channels
    with kc.loop(n_, "n") as n, kc.loop(c1, "c", start=c0) as c:
        nc = b.add(b.mul(n, kc.idx(c_)), c)
        copy_plane(b.mul(nc, kc.idx(h_ * w_)))
        out = b.mul(nc, kc.idx(oh_ * ow_))
        if safe:
            with kc.loop(safe, "oh") as oh:
                out_row(c, out, oh, True)
        with kc.loop(oh_, "ohl", start=safe) as oh:
            out_row(c, out, oh, False)

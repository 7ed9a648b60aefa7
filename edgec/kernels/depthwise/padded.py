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
from edgec.codegen.types import F32
from edgec.codegen.vector import Vec
from edgec.kernels.generic.reduce import entry_alloca

PADDED_MAX_WIDTH = 32  # output columns; wider rows keep the border split (its share is small)


def use_padded(kc: KernelContext) -> bool:
    if kc.node.op != "DepthwiseDirect" or kc.dtype(kc.inputs[0]).name != "float32":
        return False
    return any(kc.attrs.get("pads", [0, 0, 0, 0])) and kc.shape(kc.outputs[0])[3] <= PADDED_MAX_WIDTH


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
    vec = Vec(b, lanes, F32)
    nrv = -(-ow_ // lanes)
    # every read in bounds: the widest strided load of the last vector, the lowest kernel row
    wp = max(pl + w_, (nrv * lanes - 1) * sw + (kw_ - 1) * dw + 1) + (sw - 1) * lanes
    wp = -(-wp // lanes) * lanes
    hp = max(pt + h_, (oh_ - 1) * sh + (kh_ - 1) * dh + 1)
    buf = entry_alloca(kc, F32, hp * wp)
    zero = vec.zeros()
    with kc.loop(hp * wp // lanes, "z") as i:  # the borders stay zero for every channel
        vec.store(zero, b.gep(buf, [b.mul(i, kc.idx(lanes))], inbounds=True))
    full, tail = divmod(w_, lanes)

    def copy_plane(plane: ir.Value) -> None:
        with kc.loop(h_, "ch") as h:
            src = b.add(plane, b.mul(h, kc.idx(w_)))
            dst = b.add(b.mul(b.add(h, kc.idx(pt)), kc.idx(wp)), kc.idx(pl))
            for v in range(full):
                vec.store(vec.load(kc.gep(x, b.add(src, kc.idx(v * lanes)))),
                          b.gep(buf, [b.add(dst, kc.idx(v * lanes))], inbounds=True))
            if tail:
                vec.store_lanes(vec.load(kc.gep(x, b.add(src, kc.idx(full * lanes)))),
                                b.gep(buf, [b.add(dst, kc.idx(full * lanes))], inbounds=True), tail)

    def out_row(c: ir.Value, out: ir.Value, oh: ir.Value, whole: bool) -> None:
        accs = [vec.splat(kc.load(bias, c))] * nrv
        for kh in range(kh_):
            row = b.mul(b.add(b.mul(oh, kc.idx(sh)), kc.idx(kh * dh)), kc.idx(wp))
            for kw in range(kw_):
                wb = vec.splat(kc.load(w, b.add(b.mul(c, kc.idx(kh_ * kw_)), kc.idx(kh * kw_ + kw))))
                for v in range(nrv):
                    at = b.add(row, kc.idx(kw * dw + v * lanes * sw))
                    accs[v] = vec.fma(wb, vec.load_strided(b.gep(buf, [at], inbounds=True), sw), accs[v])
        dst = b.add(out, b.mul(oh, kc.idx(ow_)))
        for v in range(nrv):
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

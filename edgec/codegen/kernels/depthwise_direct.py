"""Depthwise convolution (one input channel per group, multiplier 1) for NCHW, vectorized along
output columns: each tile keeps NRV vector accumulators of one output row and adds the KH*KW
taps as broadcast-weight FMAs on contiguous (or deinterleaved, stride 2) input vectors.
Padding is explicit (a Pad node in front, from `prepare-direct-conv`)."""

from __future__ import annotations

from llvmlite import ir

from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.kernels.conv_direct import vector_activation
from edgec.codegen.vector import Vec


@lowering("DepthwiseDirect")
def lower_depthwise_direct(kc: KernelContext) -> None:
    x, w, bias = kc.inputs[:3]
    y = kc.outputs[0]
    n_, c_, h_, w_ = kc.shape(x)
    _, _, oh_, ow_ = kc.shape(y)
    kh_, kw_ = kc.attrs["kernel"]
    sh, sw = kc.attrs["strides"]
    dh, dw = kc.attrs["dilations"]
    lanes, nrv_full = kc.attrs["schedule"]["lanes"], kc.attrs["schedule"]["nrv"]
    act = kc.attrs.get("activation")
    vec = Vec(kc.b, lanes)
    b = kc.b
    nr = nrv_full * lanes

    def tile(n: ir.Value, c: ir.Value, oh: ir.Value, ow0: ir.Value, width: int) -> None:
        nrv = -(-width // lanes)
        plane = b.mul(b.add(b.mul(n, kc.idx(c_)), c), kc.idx(h_ * w_))
        accs = [vec.splat(kc.load(bias, c))] * nrv
        for kh in range(kh_):
            row = b.add(plane, b.mul(b.add(b.mul(oh, kc.idx(sh)), kc.idx(kh * dh)), kc.idx(w_)))
            for kw in range(kw_):
                wb = vec.splat(kc.load(w, b.add(b.mul(c, kc.idx(kh_ * kw_)), kc.idx(kh * kw_ + kw))))
                start = b.add(row, b.add(b.mul(ow0, kc.idx(sw)), kc.idx(kw * dw)))
                for v in range(nrv):
                    xv = vec.load_strided(kc.gep(x, b.add(start, kc.idx(v * lanes * sw))), sw)
                    accs[v] = vec.fma(wb, xv, accs[v])
        out = b.add(b.mul(b.add(b.mul(n, kc.idx(c_)), c), kc.idx(oh_ * ow_)), b.add(b.mul(oh, kc.idx(ow_)), ow0))
        for v in range(nrv):
            val = vector_activation(b, accs[v], act, lanes)
            vec.store_lanes(val, kc.gep(y, b.add(out, kc.idx(v * lanes))), min(lanes, width - v * lanes))

    full, rem = divmod(ow_, nr)
    c0, c1 = kc.task_range(c_)  # threads split the channels
    with kc.loop(n_, "n") as n, kc.loop(c1, "c", start=c0) as c, kc.loop(oh_, "oh") as oh:
        if full:
            with kc.loop(full, "owt") as owt:
                tile(n, c, oh, b.mul(owt, kc.idx(nr)), nr)
        if rem:
            tile(n, c, oh, kc.idx(full * nr), rem)

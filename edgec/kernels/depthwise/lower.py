"""Depthwise convolution (one input channel per group, multiplier 1) for NCHW, vectorized along
output columns, with padding handled inside the kernel (no padded copy of the input).

Which taps fall inside the input is static: output rows split into a top border, an interior
(runtime loop, every kernel row valid) and a bottom border (each border row emitted with its own
valid kernel rows); output columns split the same way into scalar border columns and vector
tiles over the interior columns, whose taps are all in bounds. Reads past a row's end in the
last partial tile only feed lanes that are never stored (the arena has read slack).

MaxPoolDirect is the same loop nest with max instead of multiply-add (float, or the bytes of a
quantized uint8/int8 map: max commutes with the monotone quantization, 32 byte lanes on AVX2) (no weights; taps outside
the input are skipped, which is max pooling's padding): the generic pool kernel's strided,
read-modify-write inner loop ran ResNet-18's 3x3/2 max pool at 3.3x onnxruntime's time."""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from edgec.codegen import mathfn
from edgec.codegen.activations import apply_activation
from edgec.codegen.common import vector_activation
from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.mathfn import FM
from edgec.codegen.types import llvm_type
from edgec.codegen.vector import Vec
from edgec.kernels.depthwise.padded import lower_padded_depthwise, use_padded
from edgec.kernels.depthwise.pool_separable import lower_separable_max_pool, use_separable
from edgec.kernels.depthwise.windows import interior, valid_taps
from edgec.kernels.generic.pool import nan_if_empty


@lowering("DepthwiseDirect", "MaxPoolDirect")
def lower_depthwise_direct(kc: KernelContext) -> None:
    if use_separable(kc):  # a stride-1 max pool that is mostly border (SPP)
        lower_separable_max_pool(kc)
        return
    if use_padded(kc):  # a small padded map: borders through a zero-padded copy
        lower_padded_depthwise(kc)
        return
    pool = kc.node.op == "MaxPoolDirect"
    x, w, bias = (kc.inputs[0], None, None) if pool else kc.inputs[:3]
    y = kc.outputs[0]
    n_, c_, h_, w_ = kc.shape(x)
    _, _, oh_, ow_ = kc.shape(y)
    kh_, kw_ = kc.attrs["kernel"]
    sh, sw = kc.attrs["strides"]
    dh, dw = kc.attrs["dilations"]
    pt, pl, _, _ = kc.attrs.get("pads", [0, 0, 0, 0])
    lanes, nrv_full = kc.attrs["schedule"]["lanes"], kc.attrs["schedule"]["nrv"]
    act = kc.attrs.get("activation")
    dt = kc.dtype(x)
    integer = dt.kind in "iu"  # MaxPool of a quantized map (uint8 / int8): byte lanes
    vec = Vec(kc.b, lanes, llvm_type(dt))
    b = kc.b
    nr = nrv_full * lanes
    lowest = kc.const(dt, int(np.iinfo(dt).min) if integer else float(np.finfo(np.float32).min))  # max's identity
    oh_lo, oh_hi = interior(oh_, h_, sh, pt, dh, kh_)
    ow_lo, ow_hi = interior(ow_, w_, sw, pl, dw, kw_)

    def weight(c: ir.Value, kh: int, kw: int) -> ir.Value:
        return kc.load(w, b.add(b.mul(c, kc.idx(kh_ * kw_)), kc.idx(kh * kw_ + kw)))

    def in_row(plane: ir.Value, oh: ir.Value, kh: int) -> ir.Value:
        return b.add(plane, b.mul(b.add(b.mul(oh, kc.idx(sh)), kc.idx(kh * dh - pt)), kc.idx(w_)))

    def row(n: ir.Value, c: ir.Value, oh: ir.Value, khs: list[int]) -> None:
        plane = b.mul(b.add(b.mul(n, kc.idx(c_)), c), kc.idx(h_ * w_))
        out = b.add(b.mul(b.add(b.mul(n, kc.idx(c_)), c), kc.idx(oh_ * ow_)), b.mul(oh, kc.idx(ow_)))
        bval = lowest if pool else kc.load(bias, c)
        rows = {kh: in_row(plane, oh, kh) for kh in khs}

        def step(acc: ir.Value, xv: ir.Value, wv: ir.Value | None) -> ir.Value:
            if pool and integer:
                greater = b.icmp_signed(">", xv, acc) if dt.kind == "i" else b.icmp_unsigned(">", xv, acc)
                return b.select(greater, xv, acc)
            if pool:
                return mathfn.fmax(b, xv, acc)  # a NaN in the window is skipped, like onnxruntime
            return vec.fma(wv, xv, acc) if isinstance(xv.type, ir.VectorType) else \
                b.fadd(acc, b.fmul(wv, xv, flags=FM), flags=FM)

        def scalar_col(ow: int) -> None:
            acc = bval
            for kh in khs:
                for kw in valid_taps(ow, w_, sw, pl, dw, kw_):
                    xv = kc.load(x, b.add(rows[kh], kc.idx(ow * sw - pl + kw * dw)))
                    acc = step(acc, xv, None if pool else weight(c, kh, kw))
            if pool:
                acc = nan_if_empty(b, acc, dt)
            kc.store(y, b.add(out, kc.idx(ow)), apply_activation(b, acc, act))

        def tile(ow0: ir.Value, width: int) -> None:
            nrv = -(-width // lanes)
            accs = [vec.splat(bval)] * nrv
            for kh in khs:
                for kw in range(kw_):
                    wb = None if pool else vec.splat(weight(c, kh, kw))
                    start = b.add(rows[kh], b.add(b.mul(ow0, kc.idx(sw)), kc.idx(kw * dw - pl)))
                    for v in range(nrv):
                        xv = vec.load_strided(kc.gep(x, b.add(start, kc.idx(v * lanes * sw))), sw)
                        accs[v] = step(accs[v], xv, wb)
            for v in range(nrv):
                val = vector_activation(b, nan_if_empty(b, accs[v], dt) if pool else accs[v], act, lanes)
                vec.store_lanes(val, kc.gep(y, b.add(out, b.add(ow0, kc.idx(v * lanes)))),
                                min(lanes, width - v * lanes))

        for ow in range(ow_lo):
            scalar_col(ow)
        full, rem = divmod(ow_hi - ow_lo, nr)
        if full:
            with kc.loop(full, "owt") as owt:
                tile(b.add(kc.idx(ow_lo), b.mul(owt, kc.idx(nr))), nr)
        if rem:
            tile(kc.idx(ow_lo + full * nr), rem)
        for ow in range(ow_hi, ow_):
            scalar_col(ow)

    c0, c1 = kc.task_range(c_)  # threads split the channels
    with kc.loop(n_, "n") as n, kc.loop(c1, "c", start=c0) as c:
        for oh in range(oh_lo):
            row(n, c, kc.idx(oh), valid_taps(oh, h_, sh, pt, dh, kh_))
        if oh_hi > oh_lo:
            with kc.loop(oh_hi, "oh", start=oh_lo) as oh:
                row(n, c, oh, list(range(kh_)))
        for oh in range(max(oh_hi, oh_lo), oh_):
            row(n, c, kc.idx(oh), valid_taps(oh, h_, sh, pt, dh, kh_))

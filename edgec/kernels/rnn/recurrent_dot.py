"""The recurrent product of a quantized-state LSTM (onnxruntime's DynamicQuantizeLSTM) on byte
dot products, as onnxruntime computes it: the state quantized to uint8 (its own range, as
DynamicQuantizeLinear) times the int8 recurrent weights, summed exactly in int32 (vpdpbusd),
then scaled once per column. The float path (lower.py: quantize_state + GEMV over widened int8
weights) multiplies the same numbers in float, four times as many instructions per MAC.

Target pass `recurrent-dot` (edgec/optimize/quantized_lstm.py, x86 with VNNI): an LSTM with `quantized_state` whose recurrent
weights are int8 (`exact-int8-weights`) gains inputs 14 and 15, the weights as byte quads
[D][N/8][ceil(H/4)][8][4] and their column sums [D][N] (int32), and `recurrent_dot` = "vnni".
When its input is DequantizeLinear of bytes (the input sequence of DynamicQuantizeLSTM), the
input projection moves onto byte dots as well (a QGemmDot before the LSTM; `projected`).
Per step: ga[c] = br[c] + float(sum_k q_k R[k][c] - zp * colsum[c]) * (state scale * scale[c]).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from llvmlite import ir

from edgec.codegen.isa.x86 import dot4_vnni
from edgec.codegen.loops import for_range_carried, opaque
from edgec.codegen.types import F32, I8, I32
from edgec.codegen.vector import splat, vtype

if TYPE_CHECKING:
    from edgec.kernels.rnn.lower import _Rnn

LANES = 8  # int32 lanes of vpdpbusd on ymm (also on AVX-512 profiles, as the int8 convs)
NV = 4  # column vectors per pass over the state
QUADS, COLSUM, PROJ, XSCALE = 14, 15, 16, 17  # node inputs


def recurrent_quads(rt: np.ndarray, d: int, n: int, h: int, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Packed int8 Rt [D][N/P][H][P] -> (quads [D][N/8][ceil(H/4)][8][4], colsum [D][N])."""
    r = rt.reshape(d, n // p, h, p).transpose(0, 2, 1, 3).reshape(d, h, n)  # [D][H][N]
    hq = -(-h // 4)
    full = np.zeros((d, hq * 4, n), np.int8)
    full[:, :h] = r
    quads = full.reshape(d, hq, 4, n // LANES, LANES).transpose(0, 3, 1, 4, 2)
    return np.ascontiguousarray(quads).reshape(-1), r.astype(np.int32).sum(axis=1).reshape(-1)


def project_from_dots(rnn: _Rnn, d: int, bx_d: ir.Value) -> None:
    """gx[t][b][c] = bx[c] + float(acc[t][b][d*N + c]) * x_scale * w_scale[c]."""
    b, kc = rnn.b, rnn.kc
    n, lanes = rnn.n, rnn.lanes
    fty = vtype(F32, lanes)
    acc = kc.ptr(kc.inputs[PROJ])
    xs = splat(b, kc.load(kc.inputs[XSCALE], 0), lanes)
    ws = rnn.scales(12, d)
    with kc.loop(rnn.t * rnn.bt, "pj") as r, kc.loop(n // lanes, "pc") as v:
        col = b.mul(v, kc.idx(lanes))
        src = b.add(b.mul(r, kc.idx(rnn.d * n)), b.add(kc.idx(d * n), col))
        ints = b.load(b.bitcast(rnn.at(acc, src), vtype(I32, lanes).as_pointer()), align=4)
        mult = b.fmul(xs, b.load(b.bitcast(rnn.at(ws, col), fty.as_pointer()), align=4))
        val = b.fadd(b.load(b.bitcast(rnn.at(bx_d, col), fty.as_pointer()), align=4),
                     b.fmul(b.sitofp(ints, fty), mult))
        b.store(val, b.bitcast(rnn.at(rnn.gx, b.add(b.mul(r, kc.idx(n)), col)), fty.as_pointer()), align=4)


def quantize_state_bytes(rnn: _Rnn, src: ir.Value, dst: ir.Value) -> tuple[ir.Value, ir.Value]:
    """The state row as uint8 bytes at `dst` (onnxruntime's dynamic quantization over the row);
    returns (scale, zero point i32)."""
    from edgec.kernels.generic.quant import dynamic_uint8_params, round_clamp

    b, kc = rnn.b, rnn.kc
    scale, zp = dynamic_uint8_params(kc, rnn.hp, lambda u: b.load(rnn.at(src, u)))
    out = b.bitcast(dst, I8.as_pointer())
    with kc.loop(rnn.hp, "qb") as u:
        q = round_clamp(b, b.fdiv(b.load(rnn.at(src, u)), scale), zp, 0, 255)
        b.store(b.trunc(q, I8), b.gep(out, [u], inbounds=True))
    return scale, zp


def recurrent_dot(rnn: _Rnn, d: int, qbytes: ir.Value, scale: ir.Value, zp: ir.Value, br_d: ir.Value) -> None:
    """ga = br + R h for direction d from the state bytes (see the module docstring)."""
    b, kc = rnn.b, rnn.kc
    n, h = rnn.n, rnn.h
    hq = -(-h // 4)
    vty, fty = vtype(I32, LANES), vtype(F32, LANES)
    words = b.bitcast(qbytes, I32.as_pointer())
    quads = b.bitcast(rnn.at(kc.ptr(kc.inputs[QUADS]), d * (n // LANES) * hq * LANES * 4), I32.as_pointer())
    colsum = rnn.at(kc.ptr(kc.inputs[COLSUM]), d * n)
    rscale = rnn.scales(13, d)
    zpv, sv = splat(b, zp, LANES), splat(b, scale, LANES)
    zero = ir.Constant(vty, [0] * LANES)

    def vload(ptr: ir.Value, ty: ir.Type) -> ir.Value:
        return b.load(b.bitcast(ptr, ty.as_pointer()), align=4)

    with kc.loop(n // (LANES * NV), "rg") as grp:
        blk0 = b.mul(grp, kc.idx(NV))
        base = opaque(b, quads)
        with for_range_carried(b, opaque(b, kc.idx(hq)), kc.isize, [zero] * NV, "rq") as lp:
            word = splat(b, b.load(b.gep(words, [lp.index], inbounds=True)), LANES)
            nxt = []
            for v in range(NV):
                off = b.mul(b.add(b.mul(b.add(blk0, kc.idx(v)), kc.idx(hq)), lp.index), kc.idx(LANES))
                wv = vload(b.gep(base, [off], inbounds=True), vty)
                nxt.append(b.add(lp.values[v], dot4_vnni(b, word, wv, LANES), flags=["nsw"]))
            lp.next = nxt
        for v in range(NV):
            col = b.mul(b.add(blk0, kc.idx(v)), kc.idx(LANES))
            acc = b.sub(lp.values[v], b.mul(zpv, vload(rnn.at(colsum, col), vty)))
            mult = b.fmul(sv, vload(rnn.at(rscale, col), fty))
            res = b.fadd(vload(rnn.at(br_d, col), fty), b.fmul(b.sitofp(acc, fty), mult))
            b.store(res, b.bitcast(rnn.at(rnn.ga, col), fty.as_pointer()), align=4)

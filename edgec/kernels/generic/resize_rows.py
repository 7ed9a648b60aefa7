"""Bilinear resize of short rows (output rows of at most 4 vectors, input rows of at most 2):
the 7x7 -> 14x14 and 14x14 -> 28x28 upsamples of detector necks (MediaPipe's pose detector,
FPNs). The generic kernel (resize.py) blends one output element at a time from index tables;
rows this short are too short for LLVM's loop vectorizer. Here a whole row is one vector
operation:

    for each plane, each output row oy (tables: lo/hi source rows and their weights):
        v   = w_lo[oy] * row(lo) + w_hi[oy] * row(hi)           # the input row, blended
        out = wx_lo * shuffle(v, lo_x) + wx_hi * shuffle(v, hi_x)  # the columns: constant
                                                                   # shuffles and weights

A row is loaded in power-of-two pieces (never past its end). The arithmetic order differs
from the generic kernel's (rows first, then columns): results agree to a few ulp."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from llvmlite import ir

from edgec.codegen.kernel import KernelContext
from edgec.codegen.mathfn import FM
from edgec.codegen.types import F32, I32
from edgec.codegen.vector import Vec, vtype

MAX_OUT_VECTORS = 4


def _row_in(w) -> int:  # noqa: ANN001 - resize.LinearAxis
    """Input row length the column taps read (offsets are elements: the axis is contiguous)."""
    return int(max(w.taps[0].max(), w.taps[1].max())) + 1


def fits(axes: list, lanes: int) -> bool:
    """Axes (after resize._merge_plain) of a float plane stack whose last two axes are
    interpolated with 2 taps, the last one contiguous, short enough for one row vector."""
    if len(axes) not in (2, 3) or (len(axes) == 3 and axes[0].taps is not None):
        return False
    h, w = axes[-2], axes[-1]
    if h.taps is None or w.taps is None or len(h.taps) != 2 or len(w.taps) != 2 or w.dst_stride != 1:
        return False
    return _row_in(w) <= 2 * lanes and lanes // 2 < w.n <= MAX_OUT_VECTORS * lanes


def _load_row(b: ir.IRBuilder, ptr: ir.Value, count: int, width: int) -> ir.Value:
    """`count` floats from ptr as a vector of `width` lanes (the rest undefined), loaded in
    power-of-two pieces, none past the row."""
    parts, at = [], 0
    while at < count:
        size = 1 << ((count - at).bit_length() - 1)
        p = b.gep(ptr, [ir.Constant(I32, at)], inbounds=True)
        parts.append(b.load(b.bitcast(p, vtype(F32, size).as_pointer()), align=4) if size > 1
                     else b.insert_element(ir.Constant(vtype(F32, 1), ir.Undefined), b.load(p), ir.Constant(I32, 0)))
        at += size
    # widen every piece to `width` lanes and merge them in order
    row, at = ir.Constant(vtype(F32, width), ir.Undefined), 0
    for part in parts:
        n = part.type.count
        wide = b.shuffle_vector(part, ir.Constant(part.type, ir.Undefined),
                                ir.Constant(vtype(I32, width), [k if k < n else n for k in range(width)]))
        row = b.shuffle_vector(row, wide, ir.Constant(vtype(I32, width), [
            width + k - at if at <= k < at + n else k for k in range(width)]))
        at += n
    return row


def emit(kc: KernelContext, src: str, dst: str, axes: list, lanes: int) -> None:
    b = kc.b
    planes, h, w = axes if len(axes) == 3 else (SimpleNamespace(n=1, step=0, dst_stride=0), *axes)
    w_in = _row_in(w)
    width = 1 << (w_in - 1).bit_length()  # the row vector: a power of two >= w_in
    nvec = -(-w.n // lanes)
    vec = Vec(b, lanes)
    lo_x, hi_x = (np.asarray(t, np.int64) for t in w.taps)
    wl_x, wh_x = (np.asarray(t, np.float32) for t in w.weights)
    h_lo, h_hi = kc.table(h.taps[0].astype(np.int32), "lo"), kc.table(h.taps[1].astype(np.int32), "hi")
    h_wl, h_wh = kc.table(h.weights[0], "wl"), kc.table(h.weights[1], "wh")
    sp, dp = kc.ptr(src), kc.ptr(dst)

    with kc.loop(planes.n, name="p") as p:
        s0 = b.mul(p, kc.idx(planes.step), flags=["nsw"])
        d0 = b.mul(p, kc.idx(planes.dst_stride), flags=["nsw"])
        with kc.loop(h.n, name="oy") as oy:
            rl = _load_row(b, b.gep(sp, [b.add(s0, kc.load_at(h_lo, oy))], inbounds=True), w_in, width)
            rh = _load_row(b, b.gep(sp, [b.add(s0, kc.load_at(h_hi, oy))], inbounds=True), w_in, width)
            wl = Vec(b, width).splat(kc.load_at(h_wl, oy))
            wh = Vec(b, width).splat(kc.load_at(h_wh, oy))
            row = b.fadd(b.fmul(wl, rl, flags=FM), b.fmul(wh, rh, flags=FM), flags=FM)
            out0 = b.add(d0, b.mul(oy, kc.idx(h.dst_stride), flags=["nsw"]))
            for c in range(nvec):
                cols = range(c * lanes, min(w.n, (c + 1) * lanes))
                pad = [0] * (lanes - len(cols))
                a = b.shuffle_vector(row, row, ir.Constant(vtype(I32, lanes), [int(lo_x[j]) for j in cols] + pad))
                z = b.shuffle_vector(row, row, ir.Constant(vtype(I32, lanes), [int(hi_x[j]) for j in cols] + pad))
                ka = ir.Constant(vec.ty, [float(wl_x[j]) for j in cols] + [0.0] * len(pad))
                kz = ir.Constant(vec.ty, [float(wh_x[j]) for j in cols] + [0.0] * len(pad))
                o = b.fadd(b.fmul(ka, a, flags=FM), b.fmul(kz, z, flags=FM), flags=FM)
                at = b.gep(dp, [b.add(out0, kc.idx(c * lanes))], inbounds=True)
                vec.store_lanes(o, at, len(cols))


"""Nearest upsampling by a whole factor s (2, 4, 8) on H and W of an NCHW map, as FPN necks do:
each input row is loaded as vectors, every value repeated s times by a constant shuffle, and the
widened vectors are stored to the s output rows it makes. The general nearest Resize is a gather
(gather_copy.py: an index-table load per output value); on aarch64 that ran about one value per
cycle, and fp16 values, which have no paired scalar store, half that (by the cycle model:
24 x 80 x 80 -> 160 x 160 took 320 us in fp32 and 657 us in fp16 on a Cortex-A76)."""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from edgec.codegen.kernel import KernelContext
from edgec.codegen.types import I32, llvm_type
from edgec.codegen.vector import Vec

FACTORS = (2, 4, 8)


def factor(tables: list[np.ndarray], in_shape: tuple[int, ...], out_shape: tuple[int, ...],
           strides: list[int]) -> int | None:
    """s when the nearest Resize's index tables (input offsets per output index, one per axis)
    are an s x s upsample of the last two axes that copies N and C, else None."""
    if len(in_shape) != 4 or tuple(out_shape[:2]) != tuple(in_shape[:2]):
        return None
    n, c, h, w = in_shape
    s = out_shape[3] // w if w else 0
    if s not in FACTORS or tuple(out_shape[2:]) != (h * s, w * s):
        return None
    want = [np.arange(n) * strides[0], np.arange(c) * strides[1],
            np.arange(h * s) // s * strides[2], np.arange(w * s) // s * strides[3]]
    return s if all(np.array_equal(np.asarray(t), u) for t, u in zip(tables, want)) else None


def emit(kc: KernelContext, x: str, y: str, s: int) -> None:
    n, c, h, w = kc.shape(x)
    ow = w * s
    b = kc.b
    vec = Vec(b, kc.target.lanes(kc.dtype(x).itemsize), llvm_type(kc.dtype(x)))
    lanes = vec.lanes
    repeat = ir.Constant(ir.VectorType(I32, lanes * s), [i // s for i in range(lanes * s)])
    full, tail = divmod(w, lanes)

    def put(val: ir.Value, at: ir.Value) -> None:
        """`val` stored at output offset `at` of every one of the s rows."""
        for k in range(s):
            ptr = kc.gep(y, b.add(at, kc.idx(k * ow)))
            b.store(val, b.bitcast(ptr, val.type.as_pointer()), align=vec.align)

    # output row (plane, ih * s + k) starts at (plane * h + ih) * s * ow + k * ow = row * s * ow + k * ow
    with kc.loop(n * c * h, "row") as row:
        src, dst = b.mul(row, kc.idx(w)), b.mul(row, kc.idx(s * ow))
        if full:
            with kc.loop(full, "v") as v:
                val = vec.load(kc.gep(x, b.add(src, b.mul(v, kc.idx(lanes)))))
                put(b.shuffle_vector(val, ir.Constant(val.type, ir.Undefined), repeat),
                    b.add(dst, b.mul(v, kc.idx(lanes * s))))
        for j in range(full * lanes, w):  # the row's last values, each repeated s times
            one = kc.load(x, b.add(src, kc.idx(j)))
            rep = b.insert_element(ir.Constant(ir.VectorType(vec.ety, 1), ir.Undefined), one, ir.Constant(I32, 0))
            put(b.shuffle_vector(rep, rep, ir.Constant(ir.VectorType(I32, s), [0] * s)), b.add(dst, kc.idx(j * s)))

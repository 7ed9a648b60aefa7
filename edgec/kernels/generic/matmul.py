"""MatMul(A, B[, bias]) with numpy semantics (1-D operands, broadcast batch dims), optional
transposed operands, a bias over the last output dim and a fused activation epilogue.

Two loop orders, both with a contiguous innermost loop:
- "axpy" (B read as K x N rows): for i: row = bias; for k: row += A[i,k] * B[k,:]. The inner
  loop is an elementwise update LLVM vectorizes; batch-1 (M = 1) streams B exactly once.
- "dot" (B transposed, or N == 1): for i, j: acc = sum_k A[i,k] * B[j,k] in a register, a
  reduction vectorized thanks to the reassociation flags.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from edgec.codegen.activations import apply_activation
from edgec.codegen.broadcast import broadcast_strides, collapse, contiguous_strides
from edgec.codegen.kernel import KernelContext, lowering
from edgec.kernels.generic.reduce import add, fold, mul, offset


class _Layout:
    """Logical (M, K) x (K, N) problem: element strides and batch offsets of every operand."""

    def __init__(self, kc: KernelContext):
        a, b, y = kc.inputs[0], kc.inputs[1], kc.outputs[0]
        sa, sb = kc.shape(a), kc.shape(b)
        ta, tb = bool(kc.attrs.get("trans_a")), bool(kc.attrs.get("trans_b"))
        self.a_vec, self.b_vec = len(sa) == 1, len(sb) == 1
        if self.a_vec:
            self.m, self.k = 1, sa[0]
            self.a_si, self.a_sk = 0, 1
        else:
            rows, cols = sa[-2], sa[-1]
            self.m, self.k = (cols, rows) if ta else (rows, cols)
            self.a_si, self.a_sk = (1, cols) if ta else (cols, 1)
        if self.b_vec:
            kb, self.n = sb[0], 1
            self.b_sk, self.b_sj = 1, 0
        else:
            rows, cols = sb[-2], sb[-1]
            kb, self.n = (cols, rows) if tb else (rows, cols)
            self.b_sk, self.b_sj = (1, cols) if tb else (cols, 1)
        if kb != self.k:
            raise NotImplementedError(f"MatMul inner dims differ: {sa} x {sb}")
        a_batch, b_batch = tuple(sa[:-2]), tuple(sb[:-2])
        batch = tuple(np.broadcast_shapes(a_batch, b_batch))
        if int(np.prod(batch, dtype=np.int64)) * self.m * self.n != kc.value(y).size:
            raise NotImplementedError(f"MatMul output {kc.shape(y)} does not match {sa} x {sb}")
        strides = [[s * self.m * self.n for s in contiguous_strides(batch)],
                   [s * self.m * self.k for s in broadcast_strides(a_batch, batch)],
                   [s * self.k * self.n for s in broadcast_strides(b_batch, batch)]]
        self.batch_dims, self.batch_strides = collapse(batch, strides)
        # "dot" when the k loop is contiguous in B (or N == 1, where the axpy row has one element).
        self.dot = self.b_sk == 1


@lowering("MatMul")
def lower_matmul(kc: KernelContext) -> None:
    lay = _Layout(kc)
    with kc.nest(lay.batch_dims, "batch") as bi:
        yo, ao, bo = (kc.linear(bi, st) for st in lay.batch_strides)
        if lay.dot:
            _dot(kc, lay, ao, bo, yo)
        else:
            _axpy(kc, lay, ao, bo, yo)


def _bias(kc: KernelContext, lay: _Layout, i: ir.Value, j: ir.Value) -> ir.Value | None:
    """The bias runs along the last output dim: N, or M when B is a vector."""
    if len(kc.inputs) < 3 or not kc.inputs[2]:
        return None
    return kc.load(kc.inputs[2], i if lay.b_vec else j)


def _epilogue(kc: KernelContext, v: ir.Value) -> ir.Value:
    return apply_activation(kc.b, v, kc.attrs.get("activation"))


def _dot(kc: KernelContext, lay: _Layout, ao: ir.Value, bo: ir.Value, yo: ir.Value) -> None:
    b, a_name, b_name, y = kc.b, kc.inputs[0], kc.inputs[1], kc.outputs[0]
    zero = kc.const(kc.dtype(y), 0)
    with kc.nest([lay.m, lay.n], "ij") as (i, j):
        arow = offset(kc, ao, kc.linear([i], [lay.a_si]))
        bcol = offset(kc, bo, kc.linear([j], [lay.b_sj]))

        def step(acc: ir.Value, idx: list[ir.Value]) -> ir.Value:
            av = kc.load(a_name, offset(kc, arow, kc.linear(idx, [lay.a_sk])))
            bv = kc.load(b_name, offset(kc, bcol, kc.linear(idx, [lay.b_sk])))
            return add(b, acc, mul(b, av, bv))

        acc = fold(kc, [lay.k], zero, step, "k")
        bias = _bias(kc, lay, i, j)
        if bias is not None:
            acc = add(b, acc, bias)
        kc.store(y, offset(kc, yo, kc.linear([i, j], [lay.n, 1])), _epilogue(kc, acc))


def _axpy(kc: KernelContext, lay: _Layout, ao: ir.Value, bo: ir.Value, yo: ir.Value) -> None:
    b, a_name, b_name, y = kc.b, kc.inputs[0], kc.inputs[1], kc.outputs[0]
    zero = kc.const(kc.dtype(y), 0)
    with kc.loop(lay.m, name="i") as i:
        yrow = offset(kc, yo, kc.linear([i], [lay.n]))
        arow = offset(kc, ao, kc.linear([i], [lay.a_si]))
        with kc.loop(lay.n, name="j0") as j:
            bias = _bias(kc, lay, i, j)
            kc.store(y, offset(kc, yrow, j), zero if bias is None else bias)
        with kc.loop(lay.k, name="k") as k:
            av = kc.load(a_name, offset(kc, arow, kc.linear([k], [lay.a_sk])))
            brow = offset(kc, bo, kc.linear([k], [lay.b_sk]))
            with kc.loop(lay.n, name="j") as j:
                yi = offset(kc, yrow, j)
                kc.store(y, yi, add(b, kc.load(y, yi), mul(b, av, kc.load(b_name, offset(kc, brow, j)))))
        if kc.attrs.get("activation"):
            with kc.loop(lay.n, name="j1") as j:
                yi = offset(kc, yrow, j)
                kc.store(y, yi, _epilogue(kc, kc.load(y, yi)))

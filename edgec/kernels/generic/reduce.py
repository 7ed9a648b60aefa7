"""Reductions, ArgMax/ArgMin and Softmax/LogSoftmax.

Loop order keeps the innermost loop contiguous:
- the innermost (merged) dim is reduced: one output element at a time with a register
  accumulator (a reduction loop LLVM vectorizes thanks to the reassociation flags);
- the innermost dim is kept: the output is the accumulator, updated row by row, so the inner
  loop is an elementwise update over contiguous memory.
Softmax over a trailing block is row-wise; over inner dims (e.g. channels of NCHW) it works on
chunks of the contiguous tail with small stack buffers for the running max and sum.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from edgec.codegen import mathfn as m
from edgec.codegen.broadcast import contiguous_strides
from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.mathfn import FM
from edgec.codegen.types import I64, is_signed, llvm_type

B = ir.IRBuilder
SOFTMAX_CHUNK = 64  # tail elements processed together when softmax is not over the last dim


# ---- helpers shared with the matmul and normalization kernels ---------------------------------
def is_float_type(t: ir.Type) -> bool:
    return isinstance(t, (ir.FloatType, ir.DoubleType, ir.HalfType))


def add(b: B, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.fadd(x, y, flags=FM) if is_float_type(x.type) else b.add(x, y)


def mul(b: B, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.fmul(x, y, flags=FM) if is_float_type(x.type) else b.mul(x, y)


def entry_alloca(kc: KernelContext, ty: ir.Type, count: int = 1) -> ir.Value:
    """Stack slot(s) in the entry block, where mem2reg/SROA turn scalars into registers."""
    with kc.b.goto_entry_block():
        return kc.b.alloca(ty, size=ir.Constant(ir.IntType(32), count) if count > 1 else None)


def fold(kc: KernelContext, counts: Sequence[int], init: ir.Value,
         step: Callable[[ir.Value, list[ir.Value]], ir.Value], name: str = "r") -> ir.Value:
    """acc = init; for idx in nest(counts): acc = step(acc, idx); return acc."""
    slot = entry_alloca(kc, init.type)
    kc.b.store(init, slot)
    with kc.nest(counts, name) as idx:
        kc.b.store(step(kc.b.load(slot), idx), slot)
    return kc.b.load(slot)


def offset(kc: KernelContext, base: ir.Value, extra: ir.Value | int) -> ir.Value:
    if isinstance(extra, int):
        return base if extra == 0 else kc.b.add(base, kc.idx(extra), flags=["nsw"])
    return kc.b.add(base, extra, flags=["nsw"])


# ---- reductions -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Reducer:
    init: str  # "zero" | "one" | "lowest" | "highest"
    combine: Callable[[B, ir.Value, ir.Value, bool], ir.Value]
    pre: Callable[[B, ir.Value], ir.Value] | None = None
    post: Callable[[B, ir.Value, int], ir.Value] | None = None


def _max(b: B, x: ir.Value, y: ir.Value, signed: bool) -> ir.Value:
    if is_float_type(x.type):
        return m.fmax_nan(b, x, y)  # a NaN element makes the result NaN, as in onnxruntime
    return b.select((b.icmp_signed if signed else b.icmp_unsigned)(">", x, y), x, y)


def _min(b: B, x: ir.Value, y: ir.Value, signed: bool) -> ir.Value:
    if is_float_type(x.type):
        return m.fmin_nan(b, x, y)
    return b.select((b.icmp_signed if signed else b.icmp_unsigned)("<", x, y), x, y)


def _abs(b: B, x: ir.Value) -> ir.Value:
    if is_float_type(x.type):
        return m.fabs(b, x)
    return b.select(b.icmp_signed("<", x, ir.Constant(x.type, 0)), b.neg(x), x)


def _sum(b: B, acc: ir.Value, x: ir.Value, signed: bool) -> ir.Value:
    return add(b, acc, x)


REDUCERS: dict[str, Reducer] = {
    "ReduceSum": Reducer("zero", _sum),
    "ReduceMean": Reducer("zero", _sum, post=lambda b, a, n: m.fmul(b, a, m.c(a, 1.0 / max(n, 1)))),
    "ReduceMax": Reducer("lowest", _max),
    "ReduceMin": Reducer("highest", _min),
    "ReduceProd": Reducer("one", lambda b, acc, x, s: mul(b, acc, x)),
    "ReduceL1": Reducer("zero", _sum, pre=_abs),
    "ReduceL2": Reducer("zero", _sum, pre=lambda b, x: mul(b, x, x), post=lambda b, a, n: m.sqrt(b, a)),
    "ReduceSumSquare": Reducer("zero", _sum, pre=lambda b, x: mul(b, x, x)),
    "ReduceLogSum": Reducer("zero", _sum, post=lambda b, a, n: m.log(b, a)),
}


def _identity(kind: str, dtype: np.dtype) -> ir.Constant:
    t = llvm_type(dtype)
    if np.issubdtype(dtype, np.floating):
        v = {"zero": 0.0, "one": 1.0, "lowest": float("-inf"), "highest": float("inf")}[kind]
        return ir.Constant(t, v)
    lo, hi = (0, 1) if dtype == np.bool_ else (int(np.iinfo(dtype).min), int(np.iinfo(dtype).max))
    v = {"zero": 0, "one": 1, "lowest": lo, "highest": hi}[kind]
    if v >= 1 << (t.width - 1):  # unsigned maxima: the same bits as a signed constant
        v -= 1 << t.width
    return ir.Constant(t, v)


def merged_dims(shape: Sequence[int], axes: Sequence[int]) -> list[tuple[int, bool]]:
    """(size, reduced) with size-1 dims dropped and neighbours of the same kind merged."""
    out: list[tuple[int, bool]] = []
    for k, d in enumerate(shape):
        if d == 1:
            continue
        red = k in axes
        if out and out[-1][1] == red:
            out[-1] = (out[-1][0] * d, red)
        else:
            out.append((d, red))
    return out or [(1, False)]


@lowering(*REDUCERS, "ReduceLogSumExp")
def lower_reduce(kc: KernelContext) -> None:
    x = kc.inputs[0]
    dt = np.dtype(kc.dtype(x))
    dims = merged_dims(kc.shape(x), kc.attrs["axes"])
    sizes = [d for d, _ in dims]
    in_st = contiguous_strides(sizes)
    kept_st = iter(contiguous_strides([d for d, r in dims if not r]))
    out_st = [0 if r else next(kept_st) for _, r in dims]
    count = int(np.prod([d for d, r in dims if r], dtype=np.int64))
    if kc.node.op == "ReduceLogSumExp" or dims[-1][1]:
        _reduce_per_output(kc, dims, in_st, out_st, count, dt)
    else:
        _reduce_into_output(kc, REDUCERS[kc.node.op], sizes, in_st, out_st, count, dt)


def _reduce_per_output(kc: KernelContext, dims: list[tuple[int, bool]], in_st: list[int],
                       out_st: list[int], count: int, dt: np.dtype) -> None:
    b, x, y, op = kc.b, kc.inputs[0], kc.outputs[0], kc.node.op
    kept = [k for k, (_, r) in enumerate(dims) if not r]
    red = [k for k, (_, r) in enumerate(dims) if r]
    signed = is_signed(dt)
    with kc.nest([dims[k][0] for k in kept], "o") as oi:
        obase = kc.linear(oi, [out_st[k] for k in kept])
        ibase = kc.linear(oi, [in_st[k] for k in kept])

        def elem(idx: list[ir.Value]) -> ir.Value:
            return kc.load(x, offset(kc, ibase, kc.linear(idx, [in_st[k] for k in red])))

        counts = [dims[k][0] for k in red]
        if op == "ReduceLogSumExp":  # log(sum(exp(x - max))) + max: no overflow
            mx = fold(kc, counts, _identity("lowest", dt), lambda a, i: m.fmax(b, a, elem(i)))
            s = fold(kc, counts, _identity("zero", dt),
                     lambda a, i: m.fadd(b, a, m.exp(b, m.fsub(b, elem(i), mx))))
            res = m.fadd(b, m.log(b, s), mx)
        else:
            rd = REDUCERS[op]
            pre = rd.pre or (lambda b_, v: v)
            acc = fold(kc, counts, _identity(rd.init, dt),
                       lambda a, i: rd.combine(b, a, pre(b, elem(i)), signed))
            res = rd.post(b, acc, count) if rd.post else acc
        kc.store(y, obase, res)


def _reduce_into_output(kc: KernelContext, rd: Reducer, sizes: list[int], in_st: list[int],
                        out_st: list[int], count: int, dt: np.dtype) -> None:
    b, x, y = kc.b, kc.inputs[0], kc.outputs[0]
    n_out = kc.value(y).size
    signed = is_signed(dt)
    with kc.loop(n_out) as i:
        kc.store(y, i, _identity(rd.init, dt))
    with kc.nest(sizes) as idx:
        oi = kc.linear(idx, out_st)
        v = kc.load(x, kc.linear(idx, in_st))
        kc.store(y, oi, rd.combine(b, kc.load(y, oi), rd.pre(b, v) if rd.pre else v, signed))
    if rd.post:
        with kc.loop(n_out) as i:
            kc.store(y, i, rd.post(b, kc.load(y, i), count))


# ---- ArgMax / ArgMin ------------------------------------------------------------------------
@lowering("ArgMax", "ArgMin")
def lower_arg(kc: KernelContext) -> None:
    b, x, y = kc.b, kc.inputs[0], kc.outputs[0]
    shape, axis = kc.shape(x), kc.attrs["axis"]
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    n, inner = shape[axis], int(np.prod(shape[axis + 1:], dtype=np.int64))
    dt = np.dtype(kc.dtype(x))
    pred = {"ArgMax": ">", "ArgMin": "<"}[kc.node.op] + ("=" if kc.attrs["select_last_index"] else "")
    if dt.kind == "f":
        better = lambda v, cur: b.fcmp_ordered(pred, v, cur)  # noqa: E731
    else:
        cmp = b.icmp_signed if is_signed(dt) else b.icmp_unsigned
        better = lambda v, cur: cmp(pred, v, cur)  # noqa: E731
    best_v = entry_alloca(kc, llvm_type(dt))
    best_i = entry_alloca(kc, kc.isize)
    # Output-major order: the axis loop is strided by `inner`, the same cache lines are reused
    # by the neighbouring output elements.
    with kc.nest([outer, inner], "o") as (o, j):
        base = kc.linear([o, j], [n * inner, 1])
        b.store(kc.load(x, base), best_v)
        b.store(kc.idx(0), best_i)
        with kc.loop(n, start=1, name="r") as r:
            v = kc.load(x, offset(kc, base, kc.linear([r], [inner])))
            cur = b.load(best_v)
            take = better(v, cur)
            b.store(b.select(take, v, cur), best_v)
            b.store(b.select(take, r, b.load(best_i)), best_i)
        res = b.load(best_i)
        kc.store(y, kc.linear([o, j], [inner, 1]), res if kc.isize == I64 else b.zext(res, I64))


# ---- Softmax / LogSoftmax -------------------------------------------------------------------
@lowering("Softmax", "LogSoftmax")
def lower_softmax(kc: KernelContext) -> None:
    shape, axes = kc.shape(kc.inputs[0]), kc.attrs["axes"]
    outer = int(np.prod(shape[:axes[0]], dtype=np.int64))
    n = int(np.prod(shape[axes[0]:axes[-1] + 1], dtype=np.int64))
    tail = int(np.prod(shape[axes[-1] + 1:], dtype=np.int64))
    if tail == 1:
        _softmax_rows(kc, outer, n)
    else:
        _softmax_strided(kc, outer, n, tail)


def _softmax_rows(kc: KernelContext, outer: int, n: int) -> None:
    """Each normalized block is one contiguous row: max, sum of exp, scale."""
    b, x, y = kc.b, kc.inputs[0], kc.outputs[0]
    log = kc.node.op == "LogSoftmax"
    ty = llvm_type(kc.dtype(x))
    with kc.loop(outer, name="o") as o:
        base = kc.linear([o], [n])

        def at(i: list[ir.Value]) -> ir.Value:
            return offset(kc, base, i[0])

        mx = fold(kc, [n], ir.Constant(ty, float("-inf")), lambda a, i: m.fmax(b, a, kc.load(x, at(i))))

        def acc_exp(a: ir.Value, i: list[ir.Value]) -> ir.Value:
            e = m.exp(b, m.fsub(b, kc.load(x, at(i)), mx))
            if not log:
                kc.store(y, at(i), e)
            return m.fadd(b, a, e)

        s = fold(kc, [n], ir.Constant(ty, 0.0), acc_exp)
        if log:
            shift = m.fadd(b, mx, m.log(b, s))
            with kc.loop(n, name="j") as j:
                kc.store(y, at([j]), m.fsub(b, kc.load(x, at([j])), shift))
        else:
            inv = m.fdiv(b, ir.Constant(ty, 1.0), s)
            with kc.loop(n, name="j") as j:
                kc.store(y, at([j]), m.fmul(b, kc.load(y, at([j])), inv))


def _softmax_strided(kc: KernelContext, outer: int, n: int, tail: int) -> None:
    """Blocks of shape (n, tail) with the normalized dim strided by `tail`: process `ch` tail
    columns at a time so every inner loop runs over contiguous memory."""
    b, x, y = kc.b, kc.inputs[0], kc.outputs[0]
    log = kc.node.op == "LogSoftmax"
    ty = llvm_type(kc.dtype(x))
    ch = min(SOFTMAX_CHUNK, tail)
    chunks = -(-tail // ch)
    mbuf, sbuf = entry_alloca(kc, ty, ch), entry_alloca(kc, ty, ch)
    with kc.nest([outer, chunks], "o") as (o, c):
        j0 = kc.linear([c], [ch])
        if tail % ch == 0:
            width: ir.Value | int = ch
        else:  # the last chunk is shorter
            left = b.sub(kc.idx(tail), j0)
            width = b.select(b.icmp_signed("<", left, kc.idx(ch)), left, kc.idx(ch))
        base = offset(kc, kc.linear([o], [n * tail]), j0)

        def rows(first: int = 0):  # noqa: ANN202
            return _rows_cols(kc, n, tail, base, width, first)

        with kc.loop(width, name="j") as j:
            b.store(kc.load(x, offset(kc, base, j)), b.gep(mbuf, [j]))
        with rows(1) as (xi, j):
            p = b.gep(mbuf, [j])
            b.store(m.fmax(b, b.load(p), kc.load(x, xi)), p)
        with kc.loop(width, name="j") as j:
            b.store(ir.Constant(ty, 0.0), b.gep(sbuf, [j]))
        with rows() as (xi, j):
            e = m.exp(b, m.fsub(b, kc.load(x, xi), b.load(b.gep(mbuf, [j]))))
            if not log:
                kc.store(y, xi, e)
            p = b.gep(sbuf, [j])
            b.store(m.fadd(b, b.load(p), e), p)
        with kc.loop(width, name="j") as j:
            p = b.gep(sbuf, [j])
            s = b.load(p)
            if log:
                b.store(m.fadd(b, b.load(b.gep(mbuf, [j])), m.log(b, s)), p)
            else:
                b.store(m.fdiv(b, ir.Constant(ty, 1.0), s), p)
        with rows() as (xi, j):
            k = b.load(b.gep(sbuf, [j]))
            if log:
                kc.store(y, xi, m.fsub(b, kc.load(x, xi), k))
            else:
                kc.store(y, xi, m.fmul(b, kc.load(y, xi), k))


@contextmanager
def _rows_cols(kc: KernelContext, n: int, tail: int, base: ir.Value, width: ir.Value | int,
               first: int = 0) -> Iterator[tuple[ir.Value, ir.Value]]:
    """`for r in [first, n): for j in [0, width):` yielding (base + r*tail + j, j)."""
    with kc.loop(n, name="r", start=first) as r:
        row = offset(kc, base, kc.linear([r], [tail]))
        with kc.loop(width, name="j") as j:
            yield offset(kc, row, j), j

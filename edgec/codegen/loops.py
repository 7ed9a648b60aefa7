"""Loop helpers for IRBuilder code: counted loops with phi induction variables."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from llvmlite import ir


@contextmanager
def for_range(b: ir.IRBuilder, count: ir.Value | int, ity: ir.IntType,
              start: ir.Value | int = 0, step: int = 1, name: str = "i") -> Iterator[ir.Value]:
    """`for (i = start; i < count; i += step)`; yields i. Safe for zero trip counts."""
    if isinstance(count, int):
        count = ir.Constant(ity, count)
    if isinstance(start, int):
        start = ir.Constant(ity, start)
    pre = b.block
    cond = b.append_basic_block(f"{name}.cond")
    body = b.append_basic_block(f"{name}.body")
    end = b.append_basic_block(f"{name}.end")
    b.branch(cond)
    b.position_at_end(cond)
    idx = b.phi(ity, name=name)
    idx.add_incoming(start, pre)
    b.cbranch(b.icmp_signed("<", idx, count), body, end)
    b.position_at_end(body)
    yield idx
    nxt = b.add(idx, ir.Constant(ity, step), name=f"{name}.next", flags=["nsw"])
    idx.add_incoming(nxt, b.block)
    b.branch(cond)
    b.position_at_end(end)


@contextmanager
def for_nest(b: ir.IRBuilder, counts: Sequence[int], ity: ir.IntType,
             name: str = "d") -> Iterator[list[ir.Value]]:
    """Nested loops over a static shape, outermost first; yields the index list."""
    idxs: list[ir.Value] = []
    stack = []
    for k, n in enumerate(counts):
        cm = for_range(b, n, ity, name=f"{name}{k}")
        idxs.append(cm.__enter__())
        stack.append(cm)
    yield idxs
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


def linear_index(b: ir.IRBuilder, idxs: Sequence[ir.Value], strides: Sequence[int],
                 ity: ir.IntType, offset: int = 0) -> ir.Value:
    """offset + sum(idx[k] * stride[k]) with zero strides skipped."""
    acc: ir.Value = ir.Constant(ity, offset)
    for i, s in zip(idxs, strides):
        if s == 0:
            continue
        term = i if s == 1 else b.mul(i, ir.Constant(ity, s), flags=["nsw"])
        acc = b.add(acc, term, flags=["nsw"])
    return acc


class Carried:
    """Loop-carried values of `for_range_carried`: read `.values` in the body, assign `.next`."""

    def __init__(self, index: ir.Value, values: list[ir.Value]):
        self.index = index
        self.values = values
        self.next: list[ir.Value] | None = None


@contextmanager
def for_range_carried(b: ir.IRBuilder, count: int | ir.Value, ity: ir.IntType, init: Sequence[ir.Value],
                      name: str = "k", start: int | ir.Value = 0, step: int = 1,
                      nsw: bool = True) -> Iterator[Carried]:
    """`for (i = start; i < count; i += step)` whose body updates SSA values (accumulators stay in
    registers). After the block, `carried.values` are the final values (the header phis, valid
    on the exit edge). `nsw`: the index add cannot overflow (lets LLVM widen and unroll)."""
    pre = b.block
    cond = b.append_basic_block(f"{name}.cond")
    body = b.append_basic_block(f"{name}.body")
    end = b.append_basic_block(f"{name}.end")
    b.branch(cond)
    b.position_at_end(cond)
    idx = b.phi(ity, name=name)
    idx.add_incoming(start if isinstance(start, ir.Value) else ir.Constant(ity, start), pre)
    phis = []
    for v in init:
        p = b.phi(v.type)
        p.add_incoming(v, pre)
        phis.append(p)
    end_v = count if isinstance(count, ir.Value) else ir.Constant(ity, count)
    b.cbranch(b.icmp_signed("<", idx, end_v), body, end)
    b.position_at_end(body)
    carried = Carried(idx, list(phis))
    yield carried
    if carried.next is None or len(carried.next) != len(phis):
        raise RuntimeError("for_range_carried: the body must set .next to one value per carried value")
    latch = b.block
    idx.add_incoming(b.add(idx, ir.Constant(ity, step), flags=["nsw"] if nsw else []), latch)
    for p, v in zip(phis, carried.next):
        p.add_incoming(v, latch)
    b.branch(cond)
    b.position_at_end(end)
    carried.values = list(phis)


def opaque(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    """`v`, through an empty side-effecting inline asm (no instruction is emitted): LLVM cannot
    treat it, or loads through it, as loop invariant, nor unroll a loop it bounds. Hot kernels
    use it where LLVM would hoist more vectors than there are registers, or unroll a short loop
    and schedule its loads far ahead, and spill."""
    asm = ir.InlineAsm(ir.FunctionType(v.type, [v.type]), "", "=r,0", side_effect=True)
    return b.call(asm, [v])

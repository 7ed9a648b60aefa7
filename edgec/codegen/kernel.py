"""What a lowering sees when it writes one kernel, and the lowering registry.

A kernel is an internal LLVM function `void k(i8* noalias %v0, ...)` taking one pointer per
distinct input/output value of its node. Shapes are compile-time constants, so a lowering is
plain Python deciding loop bounds and strides; only data moves at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from llvmlite import ir

from edgec.codegen.loops import for_nest, for_range, linear_index
from edgec.codegen.types import I8P, VOID, const, llvm_type
from edgec.ir.graph import Graph, Node, Value
from edgec.options import BuildOptions
from edgec.targets import TargetProfile

Lowering = Callable[["KernelContext"], None]
LOWERINGS: dict[str, Lowering] = {}


def lowering(*ops: str) -> Callable[[Lowering], Lowering]:
    def register(fn: Lowering) -> Lowering:
        for op in ops:
            LOWERINGS[op] = fn
        return fn

    return register


def kernel_values(node: Node) -> list[str]:
    """The distinct values a kernel takes pointers to, in argument order."""
    return list(dict.fromkeys([i for i in node.inputs if i] + [o for o in node.outputs if o]))


class KernelContext:
    def __init__(self, module: ir.Module, graph: Graph, node: Node, name: str, target: TargetProfile,
                 parallel: bool = False, *, options: BuildOptions):
        self.module, self.graph, self.node, self.target = module, graph, node, target
        self.options = options
        self.attrs = node.attrs
        self.isize = ir.IntType(target.pointer_bits)
        self.parallel = parallel
        names = kernel_values(node)
        extra = [ir.IntType(32), ir.IntType(32)] if parallel else []  # (task, num_tasks)
        self.fn = ir.Function(module, ir.FunctionType(VOID, [I8P] * len(names) + extra), name)
        self.fn.visibility = "hidden"  # defined in its own module, called from the entry function's
        for a in self.fn.args[:len(names)]:
            a.add_attribute("noalias")
        # Each kernel has one call site; inlining them all into graph_run made one huge function
        # whose optimization time grew superlinearly (when all kernels shared one module).
        self.fn.attributes.add("noinline")
        self.b = ir.IRBuilder(self.fn.append_basic_block("entry"))
        self._ptrs = {n: self.b.bitcast(a, llvm_type(graph.values[n].dtype).as_pointer())
                      for n, a in zip(names, self.fn.args)}
        if parallel:
            self.task = self.b.zext(self.fn.args[len(names)], self.isize) if self.isize.width > 32 \
                else self.fn.args[len(names)]
            self.num_tasks = self.b.zext(self.fn.args[len(names) + 1], self.isize) if self.isize.width > 32 \
                else self.fn.args[len(names) + 1]
        self._tables = 0

    # ---- values ------------------------------------------------------------------
    @property
    def inputs(self) -> list[str]:
        return self.node.inputs

    @property
    def outputs(self) -> list[str]:
        return self.node.outputs

    def value(self, name: str) -> Value:
        return self.graph.values[name]

    def shape(self, name: str) -> tuple[int, ...]:
        return self.graph.values[name].shape

    def dtype(self, name: str) -> np.dtype:
        return self.graph.values[name].dtype

    def ptr(self, name: str) -> ir.Value:
        return self._ptrs[name]

    def task_range(self, total: int) -> tuple[ir.Value, ir.Value]:
        """This task's share [start, end) of `total` work items (all of it when not parallel)."""
        if not self.parallel:
            return self.idx(0), self.idx(total)
        b = self.b
        start = b.udiv(b.mul(self.task, self.idx(total)), self.num_tasks)
        end = b.udiv(b.mul(b.add(self.task, self.idx(1)), self.idx(total)), self.num_tasks)
        return start, end

    def is_last_task(self) -> ir.Value:
        if not self.parallel:
            return ir.Constant(ir.IntType(1), 1)
        return self.b.icmp_unsigned("==", self.b.add(self.task, self.idx(1)), self.num_tasks)

    # ---- emission helpers -------------------------------------------------------
    def idx(self, v: int) -> ir.Constant:
        return ir.Constant(self.isize, int(v))

    def const(self, dtype: np.dtype | str, v: float | int) -> ir.Constant:
        return const(dtype, v)

    def loop(self, n: int | ir.Value, name: str = "i", start: int | ir.Value = 0,
             step: int = 1) -> Iterator[ir.Value]:
        return for_range(self.b, n, self.isize, start=start, step=step, name=name)

    @contextmanager
    def nest(self, counts: Sequence[int], name: str = "d") -> Iterator[list[ir.Value]]:
        with for_nest(self.b, counts, self.isize, name=name) as idxs:
            yield idxs

    def linear(self, idxs: Sequence[ir.Value], strides: Sequence[int], offset: int = 0) -> ir.Value:
        return linear_index(self.b, idxs, strides, self.isize, offset)

    def gep(self, name: str, index: ir.Value | int) -> ir.Value:
        if isinstance(index, int):
            index = self.idx(index)
        return self.b.gep(self._ptrs[name], [index], inbounds=True)

    def load(self, name: str, index: ir.Value | int) -> ir.Value:
        return self.b.load(self.gep(name, index))

    def store(self, name: str, index: ir.Value | int, v: ir.Value) -> None:
        self.b.store(v, self.gep(name, index))

    def table(self, data: np.ndarray, hint: str = "tbl") -> ir.Value:
        """A small constant array (index tables, coefficients) private to this module."""
        data = np.ascontiguousarray(data)
        ety = llvm_type(data.dtype)
        aty = ir.ArrayType(ety, int(data.size))
        g = ir.GlobalVariable(self.module, aty, f"{self.fn.name}.{hint}{self._tables}")
        self._tables += 1
        g.linkage = "internal"
        g.global_constant = True
        py = data.ravel().tolist()
        g.initializer = ir.Constant(aty, [ir.Constant(ety, v) for v in py])
        g.align = 16
        return self.b.gep(g, [ir.Constant(self.isize, 0), ir.Constant(self.isize, 0)], inbounds=True)

    def load_at(self, table: ir.Value, i: ir.Value) -> ir.Value:
        """table[i] (a `table`'s entry): an integer is sign-extended or truncated to the index
        width, so index tables can be stored narrow; a float comes as it is."""
        v = self.b.load(self.b.gep(table, [i], inbounds=True))
        if isinstance(v.type, ir.IntType) and v.type.width < self.isize.width:
            return self.b.sext(v, self.isize)
        if isinstance(v.type, ir.IntType) and v.type.width > self.isize.width:
            return self.b.trunc(v, self.isize)
        return v

    def finish(self) -> None:
        self.b.ret_void()

"""The generated entry point: `void <prefix>_graph_run(i8* arena, i8* pool)` calls every kernel in
order with constant offsets into the arena or the weight blob (no interpreter, no graph at run
time). Each kernel is an LLVM module of its own, so kernels compile in parallel and are cached
one by one (edgec/codegen/objects.py)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from llvmlite import ir

from edgec.codegen.kernel import LOWERINGS, KernelContext, kernel_values
from edgec.codegen.kernel_key import kernel_key
from edgec.codegen.profile import profile_table, read_timer, record, table_pointer
from edgec.codegen.types import I8, I8P, I32, VOID
from edgec.ir.graph import Graph, Node
from edgec.kernels import lowerings  # noqa: F401  (registers every lowering)
from edgec.kernels.specs import check_attrs, is_parallel
from edgec.optimize.memory_plan import ALIAS_OPS, MemoryPlan
from edgec.options import BuildOptions
from edgec.targets import TargetProfile

# Kernels smaller than this (multiply-adds) run on the calling thread even in a threaded build:
# handing a few microseconds of work to the pool costs more than it saves (batch-1 GEMVs).
PARALLEL_MIN_MACS = 1 << 18


def estimated_macs(g: Graph, node: Node) -> int:
    """Output elements x reduction length, the reduction estimated from the constant weight
    (inputs[1]) spread over the output channels (NCHW dim 1, else the last dim)."""
    out = g.values[node.outputs[0]]
    if len(node.inputs) < 2 or not node.inputs[1] or not g.values[node.inputs[1]].is_const:
        return out.size
    shape = out.shape
    channels = shape[1] if len(shape) == 4 else (shape[-1] if shape else 1)
    return out.size * max(1, g.values[node.inputs[1]].size // max(1, channels))


def kernel_symbol(prefix: str, step: int, node: Node) -> str:
    """The kernel of node number `step` of the graph: `<prefix>_k<step>_<op>`."""
    return f"{prefix}_k{step}_{node.op.lower()}"


def missing_lowerings(g: Graph) -> list[str]:
    return sorted({n.op for n in g.nodes if n.op not in ALIAS_OPS and n.op not in LOWERINGS})


class KernelModule(ir.Module):
    """The LLVM module of one kernel (or of the entry function), carrying that build's options
    for the emitters that read them through their IR builder (edgec/codegen/mathfn.py)."""

    def __init__(self, name: str, options: BuildOptions):
        super().__init__(name=name)
        self.options = options


@dataclass
class KernelUnit:
    """One kernel of the entry function: its symbol, node, argument values and cache key.
    Each kernel is its own LLVM module (compiled in parallel, cached alone: docs/build_time.md)."""

    name: str
    node: Node
    args: list[str]
    parallel: bool
    key: str | None


def plan_kernels(g: Graph, target: TargetProfile, prefix: str, options: BuildOptions,
                 opt_level: int) -> list[KernelUnit]:
    """The kernels of `g` in call order, with their cache keys (made without generating IR)."""
    check_attrs(g.nodes)  # a graph made without the pipeline (tests, tools) is checked too
    key_options = replace(options, profile=False)  # profiling changes graph_run, no kernel
    units = []
    for step, node in enumerate(g.nodes):
        if node.op in ALIAS_OPS:
            continue
        # A kernel the pool never runs is compiled without its (task, num_tasks) arguments: with
        # a kernel in its own module LLVM can no longer see the constants (0, 1) of the only
        # call, and would keep the divisions of the task split (a libgcc call on armv7).
        parallel = is_parallel(node.op) and options.threads > 1 and estimated_macs(g, node) >= PARALLEL_MIN_MACS
        name, args = kernel_symbol(prefix, step, node), kernel_values(node)
        fn = LOWERINGS.get(node.op)
        key = kernel_key(g, node, args, name, parallel, target, key_options, prefix, opt_level,
                         f"{fn.__module__}.{fn.__qualname__}" if fn else "")
        units.append(KernelUnit(name, node, args, parallel, key))
    return units


def kernel_ir(g: Graph, unit: KernelUnit, target: TargetProfile, prefix: str, options: BuildOptions) -> str:
    """The IR text of one kernel's module. The lowering sees a graph of the node and its own
    values only, so its key (edgec/codegen/kernel_key.py) covers all it can read."""
    own = Graph("kernel", {n: g.values[n] for n in unit.args}, [unit.node], [], [])
    module = KernelModule(prefix, options)
    kc = KernelContext(module, own, unit.node, unit.name, target, parallel=unit.parallel, options=options)
    LOWERINGS[unit.node.op](kc)
    kc.finish()
    return str(module)


def graph_ir(g: Graph, plan: MemoryPlan, units: list[KernelUnit], target: TargetProfile, prefix: str,
             options: BuildOptions) -> str:
    """The IR of the entry function `void <prefix>_graph_run(i8* arena, i8* pool)`: every kernel
    (declared here, defined in its own module) called in order with constant offsets. With
    `options.profile`, a timer read before the first kernel and after each one adds the kernel's
    ticks and a call to its row of the table behind the memory plan (edgec/codegen/profile.py)."""
    threads = options.threads
    module = KernelModule(prefix, options)
    isize = ir.IntType(target.pointer_bits)
    weights = ir.GlobalVariable(module, ir.ArrayType(I8, max(len(plan.weights), 1)), f"{prefix}_weights")
    weights.linkage = "external"
    weights.visibility = "hidden"
    weights.global_constant = True
    task_ty = ir.FunctionType(VOID, [I8P, I32, I32])
    parallel_for = ir.Function(module, ir.FunctionType(VOID, [I8P, task_ty.as_pointer(), I8P, I32]),
                               "edgec_parallel_for")

    run = ir.Function(module, ir.FunctionType(VOID, [I8P, I8P]), f"{prefix}_graph_run")
    b = ir.IRBuilder(run.append_basic_block("entry"))
    arena, pool = run.args
    arena.add_attribute("noalias")
    wbase = b.bitcast(weights, I8P)
    table = profile_table(plan.arena_bytes, len(units), target) if options.profile else None
    if table is not None:
        tab = table_pointer(b, arena, table, isize)
        t_prev = read_timer(module, b, table.timer)
    for index, unit in enumerate(units):
        fn = kernel_declaration(module, unit)
        args = []
        for n in unit.args:
            where, off = plan.location(n)
            base = wbase if where == "weights" else arena
            args.append(b.gep(base, [ir.Constant(isize, off)], inbounds=True))
        if not unit.parallel:
            b.call(fn, args)
        else:
            # Pointers go through a small array on the stack; the pool calls the trampoline.
            arr = b.alloca(ir.ArrayType(I8P, len(args)))
            for k, a in enumerate(args):
                b.store(a, b.gep(arr, [ir.Constant(I32, 0), ir.Constant(I32, k)], inbounds=True))
            b.call(parallel_for, [pool, _trampoline(module, fn, len(args)), b.bitcast(arr, I8P),
                                  ir.Constant(I32, threads)])
        if table is not None:
            t_now = read_timer(module, b, table.timer)
            record(b, tab, index, b.sub(t_now, t_prev))
            t_prev = t_now
    b.ret_void()
    return str(module)


def kernel_declaration(module: ir.Module, unit: KernelUnit) -> ir.Function:
    extra = [I32, I32] if unit.parallel else []
    fn = ir.Function(module, ir.FunctionType(VOID, [I8P] * len(unit.args) + extra), unit.name)
    fn.visibility = "hidden"
    return fn


def build_module(g: Graph, plan: MemoryPlan, target: TargetProfile, prefix: str,
                 options: BuildOptions, opt_level: int = 3) -> list[str]:
    """The IR texts of a build: one per kernel, then the entry function's."""
    units = plan_kernels(g, target, prefix, options, opt_level)
    return [*(kernel_ir(g, u, target, prefix, options) for u in units),
            graph_ir(g, plan, units, target, prefix, options)]


def _trampoline(module: ir.Module, kernel: ir.Function, nargs: int) -> ir.Function:
    """`void <kernel>.task(i8* args, i32 task, i32 num_tasks)`: unpack and call the kernel."""
    fn = ir.Function(module, ir.FunctionType(VOID, [I8P, I32, I32]), f"{kernel.name}.task")
    fn.linkage = "internal"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    arr = b.bitcast(fn.args[0], I8P.as_pointer())
    ptrs = [b.load(b.gep(arr, [ir.Constant(I32, k)], inbounds=True)) for k in range(nargs)]
    b.call(kernel, [*ptrs, fn.args[1], fn.args[2]])
    b.ret_void()
    return fn

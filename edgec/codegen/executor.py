"""The generated entry point: `void <prefix>_graph_run(i8* arena)` calls every kernel in order
with constant offsets into the arena or the weight blob (no interpreter, no graph at run time)."""

from __future__ import annotations

from llvmlite import ir

from edgec.codegen.kernel import LOWERINGS, KernelContext, kernel_values
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


def missing_lowerings(g: Graph) -> list[str]:
    return sorted({n.op for n in g.nodes if n.op not in ALIAS_OPS and n.op not in LOWERINGS})


class KernelModule(ir.Module):
    """The LLVM module of one build, carrying that build's options for the emitters that read
    them through their IR builder (edgec/codegen/mathfn.py: fast math)."""

    def __init__(self, name: str, options: BuildOptions):
        super().__init__(name=name)
        self.options = options


def build_module(g: Graph, plan: MemoryPlan, target: TargetProfile, prefix: str,
                 options: BuildOptions) -> str:
    """LLVM IR text for all kernels plus the graph entry function
    `void <prefix>_graph_run(i8* arena, i8* pool)`."""
    check_attrs(g.nodes)  # a graph made without the pipeline (tests, tools) is checked too
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

    calls = []
    for step, node in enumerate(g.nodes):
        if node.op in ALIAS_OPS:
            continue
        kc = KernelContext(module, g, node, f"{prefix}_k{step}_{node.op.lower()}", target,
                           parallel=is_parallel(node.op), options=options)
        LOWERINGS[node.op](kc)
        kc.finish()
        calls.append((kc, kernel_values(node)))

    run = ir.Function(module, ir.FunctionType(VOID, [I8P, I8P]), f"{prefix}_graph_run")
    b = ir.IRBuilder(run.append_basic_block("entry"))
    arena, pool = run.args
    arena.add_attribute("noalias")
    wbase = b.bitcast(weights, I8P)
    for kc, names in calls:
        args = []
        for n in names:
            where, off = plan.location(n)
            base = wbase if where == "weights" else arena
            args.append(b.gep(base, [ir.Constant(isize, off)], inbounds=True))
        if not kc.parallel:
            b.call(kc.fn, args)
        elif threads == 1 or estimated_macs(g, kc.node) < PARALLEL_MIN_MACS:
            b.call(kc.fn, [*args, ir.Constant(I32, 0), ir.Constant(I32, 1)])
        else:
            # Pointers go through a small array on the stack; the pool calls the trampoline.
            arr = b.alloca(ir.ArrayType(I8P, len(args)))
            for k, a in enumerate(args):
                b.store(a, b.gep(arr, [ir.Constant(I32, 0), ir.Constant(I32, k)], inbounds=True))
            b.call(parallel_for, [pool, _trampoline(module, kc, len(args)), b.bitcast(arr, I8P),
                                  ir.Constant(I32, threads)])
    b.ret_void()
    return str(module)


def _trampoline(module: ir.Module, kc: KernelContext, nargs: int) -> ir.Function:
    """`void <kernel>.task(i8* args, i32 task, i32 num_tasks)`: unpack and call the kernel."""
    fn = ir.Function(module, ir.FunctionType(VOID, [I8P, I32, I32]), f"{kc.fn.name}.task")
    fn.linkage = "internal"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    arr = b.bitcast(fn.args[0], I8P.as_pointer())
    ptrs = [b.load(b.gep(arr, [ir.Constant(I32, k)], inbounds=True)) for k in range(nargs)]
    b.call(kc.fn, [*ptrs, fn.args[1], fn.args[2]])
    b.ret_void()
    return fn

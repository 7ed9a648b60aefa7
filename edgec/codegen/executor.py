"""The generated entry point: `void <prefix>_graph_run(i8* arena)` calls every kernel in order
with constant offsets into the arena or the weight blob (no interpreter, no graph at run time)."""

from __future__ import annotations

from llvmlite import ir

from edgec.codegen import kernels  # noqa: F401  (registers lowerings)
from edgec.codegen.kernel import LOWERINGS, KernelContext, kernel_values
from edgec.codegen.types import I8, I8P, VOID
from edgec.ir.graph import Graph
from edgec.optimize.memory_plan import ALIAS_OPS, MemoryPlan
from edgec.targets import TargetProfile


def missing_lowerings(g: Graph) -> list[str]:
    return sorted({n.op for n in g.nodes if n.op not in ALIAS_OPS and n.op not in LOWERINGS})


def build_module(g: Graph, plan: MemoryPlan, target: TargetProfile, prefix: str) -> str:
    """LLVM IR text for all kernels plus the graph entry function."""
    module = ir.Module(name=prefix)
    isize = ir.IntType(target.pointer_bits)
    weights = ir.GlobalVariable(module, ir.ArrayType(I8, max(len(plan.weights), 1)), f"{prefix}_weights")
    weights.linkage = "external"
    weights.visibility = "hidden"
    weights.global_constant = True

    calls = []
    for step, node in enumerate(g.nodes):
        if node.op in ALIAS_OPS:
            continue
        kc = KernelContext(module, g, node, f"{prefix}_k{step}_{node.op.lower()}", target)
        LOWERINGS[node.op](kc)
        kc.finish()
        calls.append((kc.fn, kernel_values(node)))

    run = ir.Function(module, ir.FunctionType(VOID, [I8P]), f"{prefix}_graph_run")
    b = ir.IRBuilder(run.append_basic_block("entry"))
    arena = run.args[0]
    arena.add_attribute("noalias")
    wbase = b.bitcast(weights, I8P)
    for fn, names in calls:
        args = []
        for n in names:
            where, off = plan.location(n)
            base = wbase if where == "weights" else arena
            args.append(b.gep(base, [ir.Constant(isize, off)], inbounds=True))
        b.call(fn, args)
    b.ret_void()
    return str(module)

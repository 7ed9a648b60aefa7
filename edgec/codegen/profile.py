"""Per-layer profiling (`edgec build --profile`, docs/profiling.md): the timer the generated
graph function reads around every kernel, where its table lives in the arena, and what the
manifest says about each profiled kernel (node name, op, output shape, multiply-accumulates).

A build without --profile never reaches this module's IR: its graph function, its arena and
its bundle stay byte-identical to a build of an edgec without profiling."""

from __future__ import annotations

import math
from dataclasses import dataclass

from llvmlite import ir

from edgec.ir.graph import Graph, Node
from edgec.targets import TargetProfile

I64 = ir.IntType(64)
ENTRY_BYTES = 16  # edgec_profile_entry: u64 ticks, u64 calls
TABLE_ALIGN = 64
# timer name -> the edgec_timer enum value in runtime_c/edgec_profile.h
TIMER_ENUM = {"clock": "EDGEC_TIMER_CLOCK", "cntvct": "EDGEC_TIMER_CNTVCT", "tsc": "EDGEC_TIMER_TSC"}
CLOCK_FN = "edgec_profile_now"  # runtime_c/edgec_profile.c: CLOCK_MONOTONIC in ns


def timer_of(target: TargetProfile) -> str:
    """rdtsc on x86-64, the virtual counter on aarch64 (both read by one instruction in the
    generated code), clock_gettime through the runtime everywhere else (armv7)."""
    return {"x86_64": "tsc", "aarch64": "cntvct"}.get(target.arch, "clock")


@dataclass(frozen=True)
class ProfileTable:
    """The table's place: `kernels` rows of ENTRY_BYTES from `offset`, after the memory plan
    (and its read slack), so no tensor ever overlaps it."""

    offset: int
    kernels: int
    timer: str

    @property
    def arena_bytes(self) -> int:
        return self.offset + self.kernels * ENTRY_BYTES


def profile_table(plan_arena_bytes: int, kernels: int, target: TargetProfile) -> ProfileTable:
    offset = -(-plan_arena_bytes // TABLE_ALIGN) * TABLE_ALIGN
    return ProfileTable(offset, kernels, timer_of(target))


def read_timer(module: ir.Module, b: ir.IRBuilder, timer: str) -> ir.Value:
    """The timer's current value as i64. Intrinsics, not inline asm (llvmlite has no asm parser
    for other targets); each is a side effect LLVM never merges or moves across the kernel
    calls. x86-64: llvm.readcyclecounter is rdtsc. aarch64: an isb (the counter is read after
    the kernel's instructions completed), then mrs of cntvct_el0."""
    if timer == "tsc":
        return b.call(_intrinsic(module, "llvm.readcyclecounter", ir.FunctionType(I64, [])), [])
    if timer == "cntvct":
        b.call(_intrinsic(module, "llvm.aarch64.isb", ir.FunctionType(ir.VoidType(), [ir.IntType(32)])),
               [ir.Constant(ir.IntType(32), 15)])  # 15: SY, the full system
        read = _intrinsic(module, "llvm.read_volatile_register.i64", ir.FunctionType(I64, [ir.MetaDataType()]))
        return b.call(read, [module.add_metadata([ir.MetaDataString(module, "cntvct_el0")])])
    return b.call(_intrinsic(module, CLOCK_FN, ir.FunctionType(I64, [])), [])


def _intrinsic(module: ir.Module, name: str, ty: ir.FunctionType) -> ir.Function:
    fn = module.globals.get(name)
    return fn if fn is not None else ir.Function(module, ty, name)


def table_pointer(b: ir.IRBuilder, arena: ir.Value, table: ProfileTable, isize: ir.IntType) -> ir.Value:
    return b.bitcast(b.gep(arena, [ir.Constant(isize, table.offset)], inbounds=True), I64.as_pointer())


def record(b: ir.IRBuilder, tab: ir.Value, k: int, ticks: ir.Value) -> None:
    """table[k].ticks += ticks; table[k].calls += 1."""
    for slot, add in ((2 * k, ticks), (2 * k + 1, ir.Constant(I64, 1))):
        p = b.gep(tab, [ir.Constant(ir.IntType(32), slot)], inbounds=True)
        b.store(b.add(b.load(p), add), p)


# -- what the manifest says about each profiled kernel ---------------------------------------------
def node_macs(g: Graph, node: Node) -> int:
    """Multiply-accumulates of one IR node before the target passes: Conv (depthwise and
    grouped too), ConvTranspose, MatMul (from Gemm as well) and their integer forms; 0 for the rest."""
    def shape(i: int) -> tuple[int, ...]:
        name = node.inputs[i] if i < len(node.inputs) else ""
        return tuple(g.values[name].shape) if name else ()

    out = tuple(g.values[node.outputs[0]].shape) if node.outputs and node.outputs[0] else ()
    w_at = {"Conv": 1, "ConvTranspose": 1, "QConv": 3}.get(node.op)
    if w_at is not None:
        w = shape(w_at)
        if len(w) < 2:
            return 0
        # Conv: every output element is a dot product over (Cin/group) x kernel window;
        # ConvTranspose: every input element is scattered to (Cout/group) x kernel outputs.
        return math.prod(shape(0) if node.op == "ConvTranspose" else out) * math.prod(w[1:])
    if node.op in ("MatMul", "QMatMul"):
        a = shape(0)
        if not a:
            return 0
        k = a[-2] if node.attrs.get("trans_a") and len(a) > 1 else a[-1]
        return math.prod(out) * k
    return 0


ESTIMATED_OPS = ("ConvDirect", "ConvOcvec", "DepthwiseDirect")


def layer_table(front: Graph, g: Graph, nodes: list[Node], estimate: dict[int, int]) -> list[dict]:
    """One entry per profiled kernel (`nodes`, in call order, of the target graph `g`): name,
    op, output shape and MACs. A node of the `front` graph (before the target passes) gives its
    MACs to the kernel of its name (or writing its output) that the executor's own estimate
    (`estimate`: index -> MACs) rates the heaviest: a Conv lowered as Pad + ConvOcvec or
    PackPanels + ConvOcvec counts its MACs once, on the ConvOcvec."""
    names = [n.name for n in front.nodes]
    by_key: dict[tuple[str, str], int] = {}
    for n in front.nodes:
        macs = node_macs(front, n)
        if macs:
            unique = n.name and names.count(n.name) == 1
            key = ("name", n.name) if unique else ("value", n.outputs[0])
            by_key[key] = by_key.get(key, 0) + macs
    owner: dict[tuple[str, str], int] = {}
    for k, n in enumerate(nodes):
        for key in (("name", n.name), *(("value", o) for o in n.outputs)):
            if key in by_key and (key not in owner or estimate[k] >= estimate[owner[key]]):
                owner[key] = k
    macs = [0] * len(nodes)
    for key, k in owner.items():
        macs[k] += by_key[key]
    for k, n in enumerate(nodes):
        # A direct conv that took over its consumer (fuse-residual-add: the Add's output, the
        # conv's own output gone) of an unnamed node finds no key: its weight size tells its MACs.
        if not macs[k] and n.op in ESTIMATED_OPS:
            macs[k] = estimate[k]
    out = [{"name": n.name or (n.outputs[0] if n.outputs else f"kernel {k}"), "op": n.op,
            "shape": list(g.values[n.outputs[0]].shape) if n.outputs and n.outputs[0] else [],
            "macs": int(macs[k])} for k, n in enumerate(nodes)]
    for entry, n in zip(out, nodes):  # fp16 arithmetic (`--precision fp16`): twice the FMA peak
        if n.outputs and n.outputs[0] and g.values[n.outputs[0]].dtype.name == "float16":
            entry["dtype"] = "float16"
    return out

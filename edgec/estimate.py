"""A cycle model for CPUs we do not have (`edgec estimate MODEL --device rpi4`, docs/estimate.md).

For each kernel of the build (the same kernels, in the same order, as `edgec build --profile`):
1. its assembly (edgec.asm) and its innermost loops;
2. each loop through `llvm-mca` with the device core's scheduling model: cycles per iteration
   in steady state (Total Cycles / iterations);
3. the loop's work per iteration from its instructions (edgec.estimate_isa: MACs of its
   FMA/dot instructions, elements its stores write); the layer's MACs (or, for a layer without
   MACs, its output elements) divided by that is the trip count;
4. the hot loop is the one doing the most work per iteration (the main register tile; edge
   tiles are not counted), its cycles x trip count is the compute time; a memory floor
   (bytes the layer reads and writes over the bandwidth of the level they fit in) bounds it
   from below, plus a fixed cost per kernel call.

Time = cycles at the profile's clock (the core's usual clock, `--clock-ghz` to change it).
An estimate, not a measurement: benchmarks/estimate_calibration.py compares it with
`edgec bench --profile` on this machine."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import onnx

from edgec.asm import innermost_loops, lowered_kernels, units_assembly
from edgec.codegen.executor import estimated_macs
from edgec.codegen.profile import layer_table
from edgec.device.profile_report import layer_peak, peak_mac_per_cycle
from edgec.errors import EdgecError
from edgec.estimate_isa import loop_work
from edgec.options import BuildOptions, check_compute
from edgec.targets import TargetProfile, get_profile
from edgec.toolchain.lld import find_versioned


@dataclass(frozen=True)
class Core:
    """What the model assumes of a core: llvm-mca's scheduling model for it (LLVM has none for
    some cores: the closest one it has), the usual clock, and bytes per cycle from L2 and DRAM."""

    mca_cpu: str
    clock_ghz: float
    l2_bytes: int
    l2_bytes_per_cycle: float
    dram_bytes_per_cycle: float

    def bytes_per_cycle(self, nbytes: int) -> float:
        """Bandwidth for a working set of `nbytes`: L2's when it fits there, else DRAM's."""
        return self.l2_bytes_per_cycle if nbytes <= self.l2_bytes else self.dram_bytes_per_cycle


CORES = {
    "cortex-a53": Core("cortex-a53", 1.2, 512 << 10, 8.0, 2.0),  # rpi3 at 1.2 GHz
    "cortex-a55": Core("cortex-a55", 1.8, 256 << 10, 8.0, 3.0),
    "cortex-a72": Core("cortex-a72", 1.8, 1 << 20, 8.0, 2.5),  # rpi4 (1.8 GHz since 2020 firmware)
    "cortex-a76": Core("neoverse-n1", 2.4, 512 << 10, 16.0, 4.0),  # rpi5; N1 is LLVM's A76-class model
    "znver4": Core("znver4", 0.0, 1 << 20, 32.0, 4.0),
    "znver3": Core("znver3", 0.0, 512 << 10, 32.0, 8.0),
    "skylake-avx512": Core("skylake-avx512", 0.0, 1 << 20, 32.0, 6.0),
    "icelake-server": Core("icelake-server", 0.0, 1280 << 10, 32.0, 6.0),
}
GENERIC = Core("", 0.0, 512 << 10, 16.0, 4.0)
CALL_CYCLES = 150  # a kernel call: entry, argument loads, loop set-up, the tail iterations
MCA_ITERATIONS = 100


def core_of(profile: TargetProfile) -> Core:
    return CORES.get(profile.cpu, GENERIC)


def host_clock_ghz() -> float:
    """cpufreq's maximum, else /proc/cpuinfo's current MHz, else 2 GHz."""
    try:
        return int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1e6
    except (OSError, ValueError):
        pass
    try:
        m = re.search(r"cpu MHz\s*:\s*([\d.]+)", Path("/proc/cpuinfo").read_text())
        if m:
            return float(m.group(1)) / 1e3
    except OSError:
        pass
    return 2.0


def _host_clock(profile: TargetProfile) -> float:
    """A core we run on (host-like profiles have no fixed clock): its measured clock."""
    from edgec.estimate_clock import measured_clock_ghz

    return (measured_clock_ghz() if not profile.exec_wrapper else None) or host_clock_ghz()


def find_mca() -> str:
    """The newest llvm-mca (newer LLVMs model newer cores: znver4 needs LLVM >= 17)."""
    for version in range(30, 10, -1):
        path = shutil.which(f"llvm-mca-{version}")
        if path:
            return path
    return find_versioned("llvm-mca", "llvm")


@dataclass
class LoopCost:
    label: str
    instructions: int
    cycles_per_iter: float
    macs_per_iter: float
    elems_per_iter: float


@dataclass
class LayerEstimate:
    name: str
    op: str
    shape: list[int]
    macs: int
    symbol: str
    us: float = 0.0
    cycles: float = 0.0
    bound: str = ""  # compute | memory | call
    bytes: int = 0  # the layer's inputs (weights too) and outputs: what the memory floor moves
    mac_per_cycle: float | None = None
    peak_fraction: float | None = None
    loops: list[LoopCost] = field(default_factory=list)


def mca_cycles(mca: str, triple: str, cpu: str, instructions: list[str]) -> float | None:
    """Steady-state cycles per iteration of `instructions`, None when llvm-mca cannot read them."""
    if not instructions:
        return None
    proc = subprocess.run([mca, f"-mtriple={triple}", f"-mcpu={cpu}", f"-iterations={MCA_ITERATIONS}",
                           "-timeline=false", "-resource-pressure=false", "-instruction-info=false"],
                          input="\n".join(instructions) + "\n", capture_output=True, text=True, timeout=120)
    m = re.search(r"Total Cycles:\s+(\d+)", proc.stdout)
    return int(m.group(1)) / MCA_ITERATIONS if proc.returncode == 0 and m else None


def _bytes(g, node) -> int:  # noqa: ANN001 - Graph, Node
    names = [v for v in (*node.inputs, *node.outputs) if v]
    return sum(g.values[v].size * g.values[v].dtype.itemsize for v in names)


def _loop_macs(layer: LayerEstimate, node) -> float:  # noqa: ANN001 - Node
    """MACs the layer's FMA loops do: a Winograd F(r x r, 3 x 3) conv does (r+2)^2 products
    per r x r outputs where the direct conv does 9 r^2."""
    if node.op == "ConvWinograd":
        r = int(node.attrs["tile"])
        return layer.macs * (r + 2) ** 2 / (9 * r * r)
    return float(layer.macs)


def winograd_transform_elems(g, node) -> float:  # noqa: ANN001 - Graph, Node
    """Values a ConvWinograd's transforms store: (r+2)^2 per input channel and tile (V), and
    every output (Y = A^T M A), in fp32-sized elements as `loop_work` counts them (fp16: half)."""
    n, c = g.values[node.inputs[0]].shape[:2]
    y = g.values[node.outputs[0]]
    _, m, oh, ow = y.shape
    r = int(node.attrs["tile"])
    return n * ((r + 2) ** 2 * c * -(-oh // r) * -(-ow // r) + m * oh * ow) * y.dtype.itemsize / 4


def _layer_cycles(layer: LayerEstimate, node, out_elems: float, core: Core,  # noqa: ANN001
                  transform_elems: float = 0) -> None:
    """Compute time of the hot loop at the trip count the layer's work asks for, bounded below
    by the memory time. A layer with MACs: the loop doing the most MACs per iteration (the
    main register tile). Without: the mean cost per stored element over the loops that store
    (interior copies and border fills of a Pad, say, run at different speeds). Winograd: its
    transforms are multiply-adds with constants that store what they compute; the hot loop is
    the tile GEMM's (no stores), and the transforms cost their mean cycles per stored value
    times `transform_elems`."""
    fma = [lp for lp in layer.loops if lp.macs_per_iter > 0] if layer.macs else []
    transforms = 0.0
    if node.op == "ConvWinograd" and transform_elems:
        stores = [lp for lp in layer.loops if lp.elems_per_iter > 0]
        if stores:
            transforms = transform_elems * sum(lp.cycles_per_iter / lp.elems_per_iter for lp in stores) / len(stores)
        fma = [lp for lp in fma if lp.elems_per_iter == 0] or fma
    compute = 0.0
    if fma:
        hot = max(fma, key=lambda lp: (lp.macs_per_iter, -lp.cycles_per_iter))
        compute = _loop_macs(layer, node) / hot.macs_per_iter * hot.cycles_per_iter + transforms
    else:
        stores = [lp.cycles_per_iter / lp.elems_per_iter for lp in layer.loops if lp.elems_per_iter > 0]
        if stores:
            compute = out_elems * sum(stores) / len(stores)
    # no loop: straight-line code, or nothing to do (a Concat whose inputs were written in place)
    memory = layer.bytes / core.bytes_per_cycle(layer.bytes) if layer.loops else 0.0
    layer.bound = "compute" if compute >= memory and compute > 0 else "memory" if memory > 0 else "call"
    layer.cycles = max(compute, memory) + CALL_CYCLES


def estimate(model: onnx.ModelProto, device: str | TargetProfile, options: BuildOptions | None = None,
             input_shapes: dict[str, list[int]] | None = None, clock_ghz: float | None = None,
             jobs: int | None = None) -> dict:
    """The per-layer estimate: {"device", "cpu", "mca_cpu", "clock_ghz", "layers": [...], "total_us"}."""
    profile = get_profile(device) if isinstance(device, str) else device
    options = options or BuildOptions()
    check_compute(options, [profile])
    core = core_of(profile)
    # LLVM's 32-bit ARM backend has no model of the A53/A72/A76 cores; its Cortex-A57 model (an
    # ARMv8 core running AArch32 code, like an rpi3/rpi4 with a 32-bit OS) is the closest one.
    mca_cpu = "cortex-a57" if profile.arch == "armv7" else core.mca_cpu or profile.cpu
    clock = clock_ghz or core.clock_ghz or _host_clock(profile)
    mca = find_mca()
    front, g, units = lowered_kernels(model, profile, options, input_shapes=input_shapes)
    nodes = [u.node for u in units]
    table = layer_table(front, g, nodes, {k: estimated_macs(g, n) for k, n in enumerate(nodes)})
    layers = [LayerEstimate(t["name"], t["op"], t["shape"], t["macs"], u.name) for t, u in zip(table, units)]
    asm = units_assembly(g, units, profile, options)
    jobs_ = [(layer, lp) for layer in layers for lp in innermost_loops(asm[layer.symbol], layer.symbol)]

    def cost(item: tuple) -> LoopCost | None:
        layer, lp = item
        ins = lp.instructions()
        cyc = mca_cycles(mca, profile.triple, mca_cpu, ins)
        if cyc is None:
            return None
        macs, elems = loop_work(ins, profile.arch)
        return LoopCost(lp.label, len(ins), cyc, macs, elems)

    peak = peak_mac_per_cycle(profile)
    with ThreadPoolExecutor(jobs or os.cpu_count() or 2) as pool:
        for (layer, _), c in zip(jobs_, pool.map(cost, jobs_)):
            if c is not None:
                if profile.arch == "armv7" and peak and c.macs_per_iter:
                    # the stand-in Cortex-A57 model issues more NEON multiply-adds per cycle than
                    # an A53 can (2 MAC/cycle): no loop beats the real core's FMA peak
                    c.cycles_per_iter = max(c.cycles_per_iter, c.macs_per_iter / peak)
                layer.loops.append(c)
    if jobs_ and not any(layer.loops for layer in layers):
        raise EdgecError(f"{Path(mca).name} cannot model {mca_cpu!r} (or read its assembly): install a "
                         "newer LLVM (apt-get install llvm-19) or pick another --device")
    for layer, n, entry in zip(layers, nodes, table):
        # the output in fp32-sized elements, the unit of `loop_work`'s stored elements: an fp16
        # layer's loops store 8 halves per q register where fp32 stores 4 (counted as 4 before,
        # which put fp16 elementwise and Winograd transforms at twice their cycles)
        y = g.values[n.outputs[0]] if n.outputs and n.outputs[0] else None
        out = y.size * y.dtype.itemsize / 4 if y is not None else 0
        layer.bytes = _bytes(g, n)
        _layer_cycles(layer, n, out, core, winograd_transform_elems(g, n) if n.op == "ConvWinograd" else 0)
        layer.us = layer.cycles / (clock * 1e3)
        if layer.macs:
            layer.mac_per_cycle = layer.macs / layer.cycles
            layer.peak_fraction = layer.mac_per_cycle / layer_peak(peak, entry) if peak else None
    if not math.isfinite(sum(x.us for x in layers)):
        raise EdgecError("the cycle model produced a non-finite time")
    return {"device": profile.name, "cpu": profile.cpu, "mca_cpu": mca_cpu, "clock_ghz": clock,
            "mca": Path(mca).name, "peak_mac_per_cycle": peak,
            "layers": [asdict(x) for x in layers], "total_us": sum(x.us for x in layers)}


def json_report(report: dict) -> dict:
    """The `--json` form (issue 18): layers with name, op, shape, macs, us, mac_per_cycle,
    peak_fraction (+ symbol, bound, cycles), and total_us."""
    keys = ("name", "op", "shape", "macs", "us", "mac_per_cycle", "peak_fraction", "symbol", "bound", "cycles",
            "bytes")
    return {**{k: v for k, v in report.items() if k != "layers"},
            "layers": [{k: x[k] for k in keys} for x in report["layers"]]}

"""The compiler driver: model -> optimized graph (once) -> one `CompiledModel` per target
(target passes, memory plan, LLVM IR, objects). It knows nothing of bundles: the packagers
(edgec/packager: host, Android, iOS) take `CompiledModel`s and never import this module, and
`edgec.build` (edgec/compiler.py) joins the two."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import onnx

from edgec.codegen.compile_pool import default_jobs
from edgec.codegen.executor import estimated_macs, kernel_symbol, missing_lowerings
from edgec.codegen.objcache import ObjectCache
from edgec.codegen.objects import CodegenStats, kernels_object, weights_object
from edgec.codegen.profile import ProfileTable, layer_table, profile_table
from edgec.errors import EdgecError, ModelError
from edgec.importer import import_model
from edgec.ir import Graph
from edgec.optimize.memory_plan import ALIAS_OPS, MemoryPlan, plan_memory
from edgec.options import BuildOptions
from edgec.packager.cglue import TensorSpec
from edgec.pipeline import run_pipeline, target_passes
from edgec.targets import TargetProfile
from edgec.toolchain import find_toolchain
from edgec.tune.keys import Overrides

Dump = Callable[[str], None]


@dataclass
class BuildReport:
    ops: dict[str, int]
    nodes: int
    weight_bytes: int
    code_bytes: int
    arena_bytes: int
    arena_naive_bytes: int
    seconds: dict[str, float] = field(default_factory=dict)
    targets: dict[str, CodegenStats] = field(default_factory=dict)  # per device: where codegen went


@dataclass
class FrontEnd:
    """The model after import and the generic passes, shared by every target."""

    graph: Graph
    model_sha256: str
    seconds: dict[str, float]


@dataclass
class CompiledModel:
    """One target's result: the graph after its target passes, the memory plan, the kernels
    and weights objects, and the build options they were made with. Profiled builds
    (`options.profile`) add the timer table's place and one entry per kernel (name, op, shape,
    MACs: edgec/codegen/profile.py)."""

    graph: Graph
    profile: TargetProfile
    options: BuildOptions
    plan: MemoryPlan
    kernels_obj: bytes
    weights_obj: bytes
    stats: CodegenStats = field(default_factory=CodegenStats)
    profile_table: ProfileTable | None = None
    profile_layers: list[dict] = field(default_factory=list)

    @property
    def arena_bytes(self) -> int:
        """The caller's arena: the memory plan, then the profile table when there is one."""
        return self.profile_table.arena_bytes if self.profile_table else self.plan.arena_bytes

    def tensor_specs(self, names: list[str]) -> list[TensorSpec]:
        out = []
        for n in names:
            v = self.graph.values[n]
            out.append(TensorSpec(n, np.dtype(v.dtype).name, list(v.shape), v.nbytes, self.plan.offsets[n]))
        return out

    @property
    def inputs(self) -> list[TensorSpec]:
        return self.tensor_specs(self.graph.inputs)

    @property
    def outputs(self) -> list[TensorSpec]:
        return self.tensor_specs(self.graph.outputs)

    @property
    def text_bytes(self) -> int:
        """Machine code in the kernels object (.text sections), ELF or Mach-O."""
        return text_bytes(self.kernels_obj)


def text_bytes(obj: bytes) -> int:
    if obj[:4] == b"\x7fELF":
        from elftools.elf.elffile import ELFFile

        elf = ELFFile(io.BytesIO(obj))
        return sum(s.data_size for s in elf.iter_sections() if s.name.startswith(".text"))
    from edgec.packager.macho import macho_info

    return macho_info(obj, "kernels.o")["sections"].get(".text", 0)


def front_end(proto: onnx.ModelProto, input_shapes: dict[str, list[int]] | None,
              say: Callable[[str], None], dump: Dump | None,
              bind: dict[str, object] | None = None) -> FrontEnd:
    """Import and run the generic passes (quantization, if asked, has made `proto` already)."""
    t0 = time.perf_counter()
    model_sha = hashlib.sha256(proto.SerializeToString(deterministic=True)).hexdigest()
    say("importing")
    g = import_model(proto, input_shapes, bind)
    t_import = time.perf_counter()
    say("optimizing")
    g = run_pipeline(g, dump=dump)
    return FrontEnd(g, model_sha, {"import": t_import - t0, "optimize": time.perf_counter() - t_import})


def compile_for_target(g: Graph, profile: TargetProfile, options: BuildOptions, name: str = "model",
                       overrides: Overrides | None = None, dump: Dump | None = None,
                       cache: ObjectCache | None = None, jobs: int | None = None) -> CompiledModel:
    """Lower `g` (left unchanged: the target passes rewrite a copy) for one device. `cache`:
    the object cache (default: none); `jobs`: LLVM processes (default: the CPUs)."""
    t0 = time.perf_counter()
    front = g
    g = run_pipeline(g.copy(), target_passes(profile, options, overrides), dump=dump, dump_initial=False)
    missing = missing_lowerings(g)
    if missing:
        raise ModelError(f"no kernel for IR op(s): {', '.join(missing)}")
    plan = plan_memory(g)
    t_plan = time.perf_counter()
    objects = cache or ObjectCache(None)  # no cache given: one that never hits
    try:
        kernels, stats = kernels_object(g, plan, profile, name, options, objects,
                                        jobs or default_jobs(), lambda objs: find_toolchain(profile).merge_objects(objs))
    except NotImplementedError as exc:
        raise ModelError(f"cannot generate code: {exc}") from None
    t_w = time.perf_counter()
    weights = weights_object(profile, f"{name}_weights", plan.weights, objects)
    stats.seconds = {"target passes": t_plan - t0, **stats.seconds, "weights": time.perf_counter() - t_w}
    compiled = CompiledModel(g, profile, options, plan, kernels, weights, stats)
    if options.profile:  # the same kernels, in the same order, as executor.plan_kernels
        steps = [(step, n) for step, n in enumerate(g.nodes) if n.op not in ALIAS_OPS]
        nodes = [n for _, n in steps]
        compiled.profile_table = profile_table(plan.arena_bytes, len(nodes), profile)
        compiled.profile_layers = layer_table(front, g, nodes, {k: estimated_macs(g, n) for k, n in enumerate(nodes)})
        for layer, (step, n) in zip(compiled.profile_layers, steps):
            layer["symbol"] = kernel_symbol(name, step, n)
    return compiled


def load_tuning(tuning_log: object, schedule_overrides: dict | None) -> tuple[Overrides, dict | None]:
    """The schedules to apply (a log's best configs, then `schedule_overrides` on top) and what
    the manifest records of the log."""
    overrides, log_info = dict(schedule_overrides or {}), None
    if tuning_log is not None:
        from pathlib import Path

        from edgec.tune.log import load_overrides

        tuned = load_overrides(tuning_log)
        overrides = {**tuned, **overrides}
        try:
            digest = hashlib.sha256(Path(tuning_log).read_bytes()).hexdigest()
        except OSError as exc:
            raise EdgecError(f"cannot read tuning log {tuning_log}: {exc.strerror or exc}") from None
        log_info = {"sha256": digest, "tasks": len(tuned)}
    return overrides, log_info

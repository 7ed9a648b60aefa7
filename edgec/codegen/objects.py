"""The kernels object of one target: each kernel's object from the cache or from LLVM (in
parallel), then merged into one relocatable object, so the bundle's layout does not change
(docs/build_time.md).

ELF targets: one module per kernel, merged by the toolchain (`cc -r`). Mach-O (iOS): Apple's
and LLVM's Mach-O linkers have no working `-r`, so the kernel modules are linked at the IR
level and compiled as one module, cached as a whole."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edgec.codegen.compile_pool import emit_objects
from edgec.codegen.executor import graph_ir, kernel_ir, plan_kernels
from edgec.codegen.kernel_key import text_key
from edgec.codegen.module import Codegen
from edgec.codegen.objcache import ObjectCache
from edgec.ir import Graph
from edgec.optimize.memory_plan import MemoryPlan
from edgec.options import BuildOptions
from edgec.targets import TargetProfile

Merge = Callable[[list[bytes]], bytes]


@dataclass
class CodegenStats:
    """Where a target's code generation went (`edgec build --timings`)."""

    seconds: dict[str, float] = field(default_factory=dict)
    kernels: int = 0
    cached: int = 0
    jobs: int = 1
    slowest: list[tuple[str, float]] = field(default_factory=list)  # (kernel, LLVM seconds)
    worker_failures: int = 0  # modules compiled here because their worker process died


def kernels_object(g: Graph, plan: MemoryPlan, profile: TargetProfile, prefix: str, options: BuildOptions,
                   cache: ObjectCache, jobs: int, merge: Merge, opt_level: int = 3) -> tuple[bytes, CodegenStats]:
    t0 = time.perf_counter()
    stats = CodegenStats(jobs=jobs)
    units = plan_kernels(g, profile, prefix, options, opt_level)
    stats.kernels = len(units)
    entry = graph_ir(g, plan, units, profile, prefix, options)
    entry_key = text_key(entry, profile, opt_level)
    if profile.object_format == "macho":
        return _single_object(g, units, entry, entry_key, profile, prefix, options, cache, opt_level, stats, t0)

    objs = [cache.get(u.key) for u in units] + [cache.get(entry_key)]
    labels = [u.name for u in units] + [f"{prefix}_graph_run"]
    keys = [u.key for u in units] + [entry_key]
    missing = [i for i, o in enumerate(objs) if o is None]
    stats.cached = len(objs) - len(missing)
    t_key = time.perf_counter()
    texts = [kernel_ir(g, units[i], profile, prefix, options) if i < len(units) else entry for i in missing]
    t_ir = time.perf_counter()
    lost: list[int] = []
    made = emit_objects(profile, opt_level, texts, jobs, lost)
    stats.worker_failures = lost[0]
    t_llvm = time.perf_counter()
    for i, (obj, _) in zip(missing, made):
        objs[i] = obj
        cache.put(keys[i], obj)
    stats.slowest = sorted(((labels[i], secs) for i, (_, secs) in zip(missing, made)), key=lambda x: -x[1])[:5]
    merged = merge(objs) if len(objs) > 1 else objs[0]  # type: ignore[arg-type]
    t_end = time.perf_counter()
    stats.seconds = {"keys": t_key - t0, "ir": t_ir - t_key, "llvm": t_llvm - t_ir, "merge": t_end - t_llvm}
    return merged, stats  # type: ignore[return-value]


def weights_object(profile: TargetProfile, symbol: str, blob: bytes, cache: ObjectCache) -> bytes:
    """The weight blob as an object (edgec/codegen/module.py), cached by the blob's digest:
    LLVM parses the blob as text, a few seconds for 100 MB."""
    key = text_key(f"weights {symbol} {hashlib.sha256(blob).hexdigest()}", profile, 0)
    obj = cache.get(key)
    if obj is None:
        obj = Codegen(profile).weights_object(symbol, blob)
        cache.put(key, obj)
    return obj


def _single_object(g: Graph, units: list, entry: str, entry_key: str, profile: TargetProfile, prefix: str,
                   options: BuildOptions, cache: ObjectCache, opt_level: int, stats: CodegenStats,
                   t0: float) -> tuple[bytes, CodegenStats]:
    keyable = all(u.key is not None for u in units)
    key = hashlib.sha256("".join([*(u.key for u in units), entry_key]).encode()).hexdigest() if keyable else None
    obj = cache.get(key)
    t_key = time.perf_counter()
    if obj is not None:
        stats.cached = len(units) + 1
        stats.seconds = {"keys": t_key - t0}
        return obj, stats
    texts = [kernel_ir(g, u, profile, prefix, options) for u in units] + [entry]
    t_ir = time.perf_counter()
    obj = Codegen(profile, opt_level).emit_linked(texts)
    cache.put(key, obj)
    stats.seconds = {"keys": t_key - t0, "ir": t_ir - t_key, "llvm": time.perf_counter() - t_ir}
    return obj, stats

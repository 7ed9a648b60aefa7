"""Adaptive wall-clock timing of a Python callable, and this machine's CPU description.

`measure` warms up, then calls the function until it has at least `min_runs` samples AND has
spent at least `min_time` seconds. Calls much shorter than the timer's resolution and the loop's
own overhead (a ~3 µs GEMV) are timed in batches of `inner` calls per sample, as `timeit` does;
each sample is then the mean of its batch, so "min" is the fastest batch. The garbage collector
is off while timing (also as `timeit`), so a collection does not land inside a sample.
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

# Zen 2/3/4 cores retire 2 fused multiply-adds on 8 float32 lanes (256-bit) a cycle.


@dataclass
class Stats:
    """Per-call times of one engine on one case, in microseconds."""

    runs: int  # calls timed (samples * inner)
    inner: int  # calls per sample
    min_us: float
    median_us: float
    mean_us: float
    p90_us: float
    total_s: float  # wall time spent in the timed samples

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _calls_per_sample(per_call_s: float, sample_s: float) -> int:
    return max(1, math.ceil(sample_s / max(per_call_s, 1e-9)))


def measure(fn: Callable[[], object], *, min_runs: int = 10, min_time: float = 0.5,
            warmup: int = 3, sample_time: float = 50e-6) -> Stats:
    """Time `fn()`; see the module docstring. `sample_time` is the smallest batch duration."""
    if min_runs < 1 or warmup < 0 or min_time < 0:
        raise ValueError("min_runs must be >= 1, warmup and min_time >= 0")
    clock = time.perf_counter
    # Warm-up: caches, page faults of the arena and lazy library initialisation. Spend at
    # least a tenth of the measuring budget (but at most 2 s) so the clock and caches settle.
    warm: list[float] = []
    t_start = clock()
    while len(warm) < max(1, warmup) or (clock() - t_start < min(0.1 * min_time, 2.0) and len(warm) < 10_000):
        t0 = clock()
        fn()
        warm.append(clock() - t0)
    inner = _calls_per_sample(statistics.median(warm), sample_time)
    samples: list[float] = []
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        spent = 0.0
        rng = range(inner)
        while len(samples) < min_runs or spent < min_time:
            t0 = clock()
            for _ in rng:
                fn()
            dt = clock() - t0
            spent += dt
            samples.append(dt / inner)
    finally:
        if was_enabled:
            gc.enable()
    return _stats(samples, inner, spent)


def _stats(samples: list[float], inner: int, spent: float) -> Stats:
    """Stats of per-call times in seconds (each the mean of a batch of `inner` calls)."""
    us = sorted(v * 1e6 for v in samples)
    p90 = us[min(len(us) - 1, math.ceil(0.9 * len(us)) - 1)]
    return Stats(runs=len(us) * inner, inner=inner, min_us=us[0], median_us=statistics.median(us),
                 mean_us=statistics.fmean(us), p90_us=p90, total_s=spent)


def measure_paired(fns: dict[str, Callable[[], object]], *, min_runs: int = 10, min_time: float = 0.5,
                   warmup: int = 3, sample_time: float = 50e-6) -> tuple[dict[str, Stats], float]:
    """Time several engines on one case in alternating rounds (one sample of each per round,
    the order flipped every round), so a slow spell of a shared machine hits all of them alike.
    Returns per-engine stats and the median over rounds of (first engine / second engine), the
    ratio least moved by drift. `min_time` is per engine."""
    names = list(fns)
    inner = {}
    for k in names:  # warm-up of each, and its batch size
        warm = []
        for _ in range(max(1, warmup)):
            t0 = time.perf_counter()
            fns[k]()
            warm.append(time.perf_counter() - t0)
        inner[k] = _calls_per_sample(statistics.median(warm), sample_time)
    samples: dict[str, list[float]] = {k: [] for k in names}
    spent = dict.fromkeys(names, 0.0)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        while len(samples[names[0]]) < min_runs or min(spent.values()) < min_time:
            order = names if len(samples[names[0]]) % 2 == 0 else names[::-1]
            for k in order:
                fn, rng = fns[k], range(inner[k])
                t0 = time.perf_counter()
                for _ in rng:
                    fn()
                dt = time.perf_counter() - t0
                spent[k] += dt
                samples[k].append(dt / inner[k])
    finally:
        if was_enabled:
            gc.enable()
    ratio = statistics.median(a / b for a, b in zip(samples[names[0]], samples[names[1]])) \
        if len(names) > 1 else 1.0
    return {k: _stats(samples[k], inner[k], spent[k]) for k in names}, ratio


# -- machine description --------------------------------------------------------------------

def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def fp32_flop_per_cycle() -> int:
    """fp32 FLOP per cycle of one core, from /proc/cpuinfo: FMA pipes x lanes x 2. Zen 1 (AMD
    family 0x17, models below 0x30) splits 256-bit ops in two 128-bit halves: 16; Zen 2-4 and
    Intel AVX2 parts: two 256-bit FMA pipes, 32 (Zen 4 runs AVX-512 double-pumped); Zen 5 and
    Intel AVX-512 parts: 64; AVX without FMA 16; aarch64 NEON (two 128-bit FMA pipes) 16;
    otherwise 8."""
    info = _cpuinfo()
    m = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", info, re.M)
    flags = set(m.group(1).split()) if m else set()
    amd = "AuthenticAMD" in info
    fam = re.search(r"^cpu family\s*:\s*(\d+)", info, re.M)
    mod = re.search(r"^model\s*:\s*(\d+)", info, re.M)
    family, model = (int(fam.group(1)) if fam else 0), (int(mod.group(1)) if mod else 0)
    if amd and family == 0x17 and model < 0x30:
        return 16
    if "avx512f" in flags and not (amd and family < 0x1A):
        return 64
    if "avx2" in flags and "fma" in flags:
        return 32
    if "avx" in flags or "asimd" in flags or platform.machine() in ("aarch64", "arm64"):
        return 16
    return 8


def cpu_model() -> str:
    m = re.search(r"^model name\s*:\s*(.+)$", _cpuinfo(), re.M)
    return m.group(1).strip() if m else (platform.processor() or platform.machine())


def cpu_ghz() -> float | None:
    """The clock a busy core runs at: measured (edgec/estimate_clock.py: a chain of dependent
    adds, one per cycle), since in a VM and on boosting CPUs /proc/cpuinfo says the base clock
    (2.6 GHz on this Zen 4 VM, which runs at 3.7: the table said 126% of peak). Else the highest
    "cpu MHz" in /proc/cpuinfo, else the cpufreq maximum; None when nothing is readable."""
    from edgec.estimate_clock import measured_clock_ghz

    measured = measured_clock_ghz()
    if measured:
        return measured
    mhz = [float(v) for v in re.findall(r"^cpu MHz\s*:\s*([0-9.]+)", _cpuinfo(), re.M)]
    if mhz:
        return max(mhz) / 1000.0
    try:
        khz = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()
        return int(khz) / 1e6
    except (OSError, ValueError):
        return None


def machine_info(ghz: float | None, flop_per_cycle: int) -> dict[str, object]:
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "ghz": ghz,
        "fp32_flop_per_cycle": flop_per_cycle,
        "peak_gflops_1core": ghz * flop_per_cycle if ghz else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def write_json(path: str | Path, doc: object) -> Path:
    """A benchmark's results as JSON, its directory made if needed (results/ is git-ignored)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1))
    return out

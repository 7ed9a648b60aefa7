"""`edgec bench --profile`: the per-kernel table a profiled bundle's harness prints (ticks and
calls per kernel, docs/profiling.md) joined with the manifest's layers (name, op, shape, MACs)
into per-layer times, shares and MAC/cycle; a Chrome trace of one representative run; a bar
chart when matplotlib is importable."""

from __future__ import annotations

import json
import math
from pathlib import Path

from edgec.errors import DeviceError, EdgecError
from edgec.targets import TargetProfile

# fp32 multiply-accumulates per cycle of one core (FMA pipes x lanes), for the CPUs whose
# numbers are known here; other CPUs get peak_fraction null.
PEAK_FP32_MAC_PER_CYCLE = {
    "haswell": 16, "broadwell": 16, "skylake": 16, "znver2": 16, "znver3": 16,
    "znver4": 16, "skylake-avx512": 32, "cascadelake": 32, "icelake-server": 32, "sapphirerapids": 32,
    "znver5": 32,
    # ARM (Arm's software optimization guides): A53 issues a Q-form FMLA every other cycle, A72
    # one per cycle (8 FP32 FLOP/cycle), A76 two per cycle
    "cortex-a53": 2, "cortex-a55": 4, "cortex-a72": 4, "cortex-a76": 8,
}
TIMERS = ("tsc", "cntvct", "clock")
CPUFREQ = "cpufreq max"


def peak_mac_per_cycle(target: TargetProfile) -> float | None:
    return PEAK_FP32_MAC_PER_CYCLE.get(target.cpu)


def layer_peak(peak: float, layer: dict) -> float:
    """The FMA peak a profiled layer (a `layer_table` entry) is rated against: fp16 arithmetic
    (`dtype` float16) does eight lanes per FMA where fp32 does four."""
    return peak * (2 if layer.get("dtype") == "float16" else 1)


def _counts(raw: dict, key: str, n: int, where: str) -> list[int]:
    v = raw.get(key)
    if not isinstance(v, list) or len(v) != n or not all(isinstance(x, int) and x >= 0 for x in v):
        raise DeviceError(f"the profile from {where} has no valid {key!r} for the bundle's {n} kernels "
                          "(harness and bundle do not match)")
    return v


def summarize(manifest: dict, stats: dict, target: TargetProfile, emulated: bool, where: str) -> dict:
    """The per-layer report from the harness's `profile` block. `us` is the mean time per run
    (a kernel runs once per run); MAC/cycle needs a CPU clock: cpufreq's maximum on the device,
    else the TSC's rate (x86's nominal clock: a core in turbo does more per TSC tick, so no
    peak fraction then); none under emulation (the cycles are not the device's)."""
    layers = (manifest.get("profile") or {}).get("layers")
    raw = stats.get("profile")
    if not isinstance(layers, list) or not isinstance(raw, dict):
        raise DeviceError(f"{where} printed no profile: is the bundle built with --profile?")
    n = len(layers)
    calls, ticks, run_ticks = (_counts(raw, k, n, where) for k in ("calls", "ticks", "run_ticks"))
    tps, cpu_hz = raw.get("ticks_per_s"), raw.get("cpu_hz")
    if not isinstance(tps, (int, float)) or tps <= 0 or raw.get("timer") not in TIMERS:
        raise DeviceError(f"{where} does not know its profile timer's rate ({raw.get('timer')!r})")
    clock_hz, clock = None, None
    if not emulated and isinstance(cpu_hz, (int, float)) and cpu_hz > 0:
        clock_hz, clock = float(cpu_hz), CPUFREQ
    elif not emulated and raw["timer"] == "tsc":
        clock_hz, clock = float(tps), "tsc"
    peak = peak_mac_per_cycle(target)
    runs = max(1, int(stats.get("runs") or 1))
    out = []
    for k, layer in enumerate(layers):
        us = ticks[k] / tps * 1e6 / runs
        macs = int(layer.get("macs") or 0)
        mpc = macs / (us * 1e-6 * clock_hz) if clock_hz and macs and us > 0 else None
        out.append({"name": str(layer.get("name")), "op": str(layer.get("op")), "shape": layer.get("shape"),
                    "symbol": layer.get("symbol"), "macs": macs, "calls": calls[k], "us": us,
                    "run_us": run_ticks[k] / tps * 1e6, "mac_per_cycle": mpc,
                    "peak_fraction": mpc / layer_peak(peak, layer)
                    if mpc is not None and peak and clock == CPUFREQ else None})
    total = sum(x["us"] for x in out)
    for x in out:
        x["share_pct"] = 100.0 * x["us"] / total if total > 0 else 0.0
    return {"layers": out, "total_us": total, "timer": raw["timer"], "ticks_per_s": tps,
            "clock_hz": clock_hz, "clock": clock, "peak_mac_per_cycle": peak, "emulated": emulated,
            "representative_run_us": raw.get("run_us")}


def chrome_trace(report: dict, title: str) -> dict:
    """Trace event format: one complete ("X") event per layer, back to back in call order, from
    the representative run (chrome://tracing, Perfetto)."""
    events, ts = [], 0.0
    for x in report["layers"]:
        events.append({"name": x["name"], "cat": x["op"], "ph": "X", "ts": round(ts, 3),
                       "dur": round(x["run_us"], 3), "pid": 1, "tid": 1,
                       "args": {"op": x["op"], "shape": x["shape"], "macs": x["macs"], "symbol": x["symbol"],
                                "mean_us": round(x["us"], 3)}})
        ts += x["run_us"]
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"title": title, "timer": report["timer"], "total_us": round(ts, 3)}}


def write_trace(report: dict, path: Path, title: str) -> Path:
    try:
        path.write_text(json.dumps(chrome_trace(report, title)) + "\n")
    except OSError as exc:
        raise EdgecError(f"cannot write the trace to {path}: {exc.strerror or exc}") from None
    return path


def write_chart(report: dict, path: Path, title: str, top: int = 40) -> Path | None:
    """A horizontal bar chart of the `top` slowest layers; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = sorted(report["layers"], key=lambda x: -x["us"])[:top][::-1]
    fig, ax = plt.subplots(figsize=(10, 1.5 + 0.28 * len(rows)))
    labels = [f"{x['name'][:40]} ({x['op']})".replace("$", r"\$") for x in rows]  # no mathtext from a model
    ax.barh(labels, [x["us"] for x in rows], color="#4878a8")
    ax.set_xlabel("µs per run")
    ax.set_title(f"{title}: {len(rows)} slowest of {len(report['layers'])} layers, "
                 f"{report['total_us']:.1f} µs in kernels", fontsize=10)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=100)
    except OSError as exc:
        raise EdgecError(f"cannot write the chart to {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return path


def json_layers(report: dict) -> dict:
    """What `edgec bench --profile --json` adds to the result."""
    keys = ("name", "op", "shape", "macs", "us", "mac_per_cycle", "peak_fraction", "calls", "share_pct", "symbol")
    return {"layers": [{k: _finite(x[k]) for k in keys} for x in report["layers"]],
            "total_us": report["total_us"],
            "profile": {k: report[k] for k in ("timer", "ticks_per_s", "clock_hz", "clock", "peak_mac_per_cycle",
                                               "emulated", "representative_run_us")}}


def _finite(v: object) -> object:
    return None if isinstance(v, float) and not math.isfinite(v) else v

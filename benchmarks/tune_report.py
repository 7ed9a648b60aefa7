"""Tuning report (issue 7, acceptance 4): `python -m benchmarks.tune_report [--trials N]`.
With `--whole-model mobilenetv2 --budget 10m`: the whole-model report of issue 20
(benchmarks/tune_whole_model.py).

For dense-1024 GEMV and MobileNetV2's biggest conv (by FLOPs of one node) on the local device
(or a registered device with --device): tune with the XGBoost + annealing tuner (N <= 200
trials), measure the whole config space exhaustively (the "reduced space": every config of
the template), then re-measure default / tuned best / exhaustive best side by side, several
interleaved rounds (min of the rounds), so the comparison is not skewed by drift between runs.
Also trains the rank model on the tuning run's measurements and reports its Spearman rank
correlation on the held-out configs of the exhaustive run. Not a test: prints a table and
writes benchmarks/results/tune_report.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.cases import dense
from benchmarks.tune_whole_model import OUT as WM_OUT
from benchmarks.tune_whole_model import add_arguments
from benchmarks.tune_whole_model import run as run_whole_model
from edgec.models.mobilenet_v2 import mobilenet_v2
from edgec.tune.cost_model import CostModel, features, spearman
from edgec.tune.log import best_records, cost, read_log
from edgec.tune.measure import LocalRunner, MeasureOptions, TaskBuilder
from edgec.tune.pool import DevicePool
from edgec.tune.tasks import Task, extract_tasks
from edgec.tune.tuner import TuneOptions, tune

OUT = Path(__file__).resolve().parent / "results" / "tune_report.json"
con = Console(stderr=True)


def _runner(device: str):  # noqa: ANN202
    if device == "local":
        return LocalRunner(), "host"
    from edgec.device import open_device
    from edgec.tune.measure import SSHRunner

    dev = open_device(device)
    return SSHRunner(dev), dev.entry.profile


def _remeasure(task: Task, configs: dict[str, dict], device: str, rounds: int, min_time: float) -> dict:
    """Min over `rounds` interleaved measurements of each named config."""
    runner, _ = _runner(device)
    pool = DevicePool([runner])
    best: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="edgec-tr-") as tmp:
            b = TaskBuilder(task.task, Path(tmp))
            space = task.space()
            built = {name: b.build(space.index(k), k) for name, k in configs.items()}
            uniq = {bl.index: bl for bl in built.values()}
            for _ in range(rounds):
                got: dict[int, float] = {}
                pool.measure(b, list(uniq.values()), MeasureOptions(min_time_s=min_time, runs=50),
                             lambda r, got=got: got.__setitem__(r.index, r.cost))
                for name, bl in built.items():
                    c = got.get(bl.index)
                    if c is not None:
                        best[name] = min(best.get(name, c), c)
    finally:
        pool.close()
    return best


def _cv_and_ceiling(task: Task, tuned: list[dict], exh: list[dict]) -> tuple[float, float]:
    """Mean held-out Spearman over random 50/50 splits of the exhaustive run (the model's
    skill on unbiased samples), and the measurement noise ceiling: Spearman between the two
    runs' costs of the configs both measured."""
    ok = [r for r in exh if cost(r) is not None]
    rhos = []
    for seed in range(5):
        order = np.random.default_rng(seed).permutation(len(ok))
        tr, te = [ok[i] for i in order[: len(ok) // 2]], [ok[i] for i in order[len(ok) // 2:]]
        m = CostModel()
        for r in tr:
            m.add(task.key, features(task.task, r["config"]["knobs"]), cost(r))
        m.fit()
        pred = m.predict(np.stack([features(task.task, r["config"]["knobs"]) for r in te]))
        rhos.append(spearman(pred, -np.array([cost(r) for r in te])))
    first = {r["config"]["index"]: cost(r) for r in tuned if cost(r) is not None}
    both = [(first[r["config"]["index"]], cost(r)) for r in ok if r["config"]["index"] in first]
    ceiling = spearman(np.array([a for a, _ in both]), np.array([b for _, b in both])) if len(both) > 2 else float("nan")
    return float(np.mean(rhos)), ceiling


def _one(task: Task, args: argparse.Namespace, work: Path) -> dict:
    con.print(f"[bold]{task.describe()}[/]: space {len(task.space())} configs, tuning {args.trials} trials")
    runner, profile = _runner(args.device)
    tlog, xlog = work / f"{task.kernel}_tuned.jsonl", work / f"{task.kernel}_exhaustive.jsonl"
    t0 = time.perf_counter()
    opts = TuneOptions(trials=args.trials, batch=8, measure=MeasureOptions(min_time_s=args.min_time))
    tune(None, [runner], tlog, profile, opts, tasks=[task])  # type: ignore[arg-type]
    t_tune = time.perf_counter() - t0
    con.print(f"  tuned in {t_tune:.0f} s; exhaustive run over the space")
    runner, _ = _runner(args.device)
    full = TuneOptions(trials=len(task.space()), batch=16, measure=MeasureOptions(min_time_s=args.min_time))
    tune(None, [runner], xlog, profile, full, tasks=[task])  # type: ignore[arg-type]
    tuned, exh = read_log(tlog), read_log(xlog)
    tuned_best = best_records(tuned)[task.key]["config"]["knobs"]
    exh_best = best_records(exh)[task.key]["config"]["knobs"]
    # Held-out rank correlation: trained on the tuning run, scored on configs it never measured.
    m = CostModel()
    for r in tuned:
        m.add(task.key, features(task.task, r["config"]["knobs"]), cost(r))
    m.fit()
    seen = {r["config"]["index"] for r in tuned}
    held = [r for r in exh if r["config"]["index"] not in seen and cost(r) is not None]
    rho = spearman(m.predict(np.stack([features(task.task, r["config"]["knobs"]) for r in held])),
                   -np.array([cost(r) for r in held])) if len(held) > 2 else float("nan")
    cv, ceiling = _cv_and_ceiling(task, tuned, exh)
    con.print("  re-measuring default / tuned / exhaustive best")
    final = _remeasure(task, {"default": task.default_knobs, "tuned": tuned_best, "exhaustive": exh_best},
                       args.device, args.rounds, max(args.min_time, 0.2))
    return {"task": task.describe(), "key": task.key, "space": len(task.space()), "trials": len(tuned),
            "tune_seconds": round(t_tune, 1), "default_knobs": task.default_knobs, "tuned_knobs": tuned_best,
            "exhaustive_knobs": exh_best, "default_us": final["default"] * 1e6, "tuned_us": final["tuned"] * 1e6,
            "exhaustive_us": final["exhaustive"] * 1e6, "speedup_vs_default": final["default"] / final["tuned"],
            "tuned_vs_exhaustive": final["tuned"] / final["exhaustive"], "held_out": len(held),
            "spearman_held_out": rho, "spearman_cv": cv, "noise_ceiling": ceiling}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=32, help="tuning trials per task (<= 200)")
    ap.add_argument("--device", default="local", help="`local` or a registered device name")
    ap.add_argument("--min-time", type=float, default=0.05, help="seconds of timed runs per config")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved re-measurement rounds")
    ap.add_argument("--json", type=Path, default=None, help=f"default {OUT} ({WM_OUT} with --whole-model)")
    add_arguments(ap)
    args = ap.parse_args(argv)
    if args.whole_model:
        args.json = args.json or WM_OUT
        return run_whole_model(args, _remeasure, _runner)
    args.json = args.json or OUT
    gemv = next(t for t in extract_tasks(dense(1024), "host") if t.kernel == "gemv")
    convs = [t for t in extract_tasks(mobilenet_v2(), "host") if t.kernel == "conv2d"]
    conv = max(convs, key=lambda t: (t.flops, t.key))  # the biggest single conv
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgec-tune-report-") as tmp:
        for t in (gemv, conv):
            rows.append(_one(t, args, Path(tmp)))
    tab = Table(title=f"edgec tune on {args.device}: min µs of the kernel (best of {args.rounds} rounds)")
    for col in ("task", "space", "trials", "default", "tuned", "exhaustive", "tuned/default speed-up",
                "tuned vs exhaustive", "Spearman held-out / 50-50 CV / noise ceiling", "tuned knobs"):
        tab.add_column(col)
    for r in rows:
        tab.add_row(r["task"], str(r["space"]), str(r["trials"]), f"{r['default_us']:.2f}", f"{r['tuned_us']:.2f}",
                    f"{r['exhaustive_us']:.2f}", f"{r['speedup_vs_default']:.2f}x",
                    f"{(r['tuned_vs_exhaustive'] - 1) * 100:+.1f}%", f"{r['spearman_held_out']:.2f} (n={r['held_out']}) / {r['spearman_cv']:.2f} / "
                    f"{r['noise_ceiling']:.2f}",
                    " ".join(f"{k}={v}" for k, v in sorted(r["tuned_knobs"].items())))
    Console().print(tab)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=1, sort_keys=True))
    print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

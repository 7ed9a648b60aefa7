"""`edgec tune MODEL --device NAME|local --trials N --log LOG [--resume] [--report]
[--budget 10m] [--warm-start LOG ...] [--cluster pool|ray|ray://HOST:PORT]`: AutoTVM-style
tuning (edgec.tune) with rich progress, on this machine's device pool or on a Ray farm;
registered on the main app by cli.py."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from edgec.errors import EdgecError

err = Console(stderr=True)


def _runners(devices: list[str], trust_new_host: bool) -> tuple[list, str]:
    from edgec.device import open_device
    from edgec.tune.measure import LocalRunner, SSHRunner

    runners, profiles = [], set()
    for name in devices:
        if name == "local":
            runners.append(LocalRunner())
            profiles.add("host")
        else:
            dev = open_device(name, trust_new_host=trust_new_host)
            runners.append(SSHRunner(dev))
            profiles.add(dev.entry.profile)
    if len(profiles) != 1:
        raise EdgecError(f"--device: all devices of one run must share a profile, got {sorted(profiles)}")
    return runners, profiles.pop()


def _farm(devices: list[str], trust_new_host: bool, cluster: str):  # noqa: ANN202
    """A RayFarm over the devices. SSH host keys are checked here first (and recorded with
    --trust-new-host); the actors get the known_hosts lines, never a key."""
    from edgec.device import open_device
    from edgec.tune.farm import import_ray

    import_ray()  # one line saying what to install, before anything else
    from edgec.tune.ray_actors import local_spec, ssh_spec
    from edgec.tune.ray_farm import RayFarm

    specs, profiles, seen = [], set(), Counter()
    for name in devices:
        seen[name] += 1
        if name == "local":
            specs.append(local_spec("local" if seen[name] == 1 else f"local-{seen[name]}"))
            profiles.add("host")
            continue
        if seen[name] > 1:
            continue
        dev = open_device(name, trust_new_host=trust_new_host)
        dev.connect()
        dev.close()
        kh = dev.entry.known_hosts_path()
        specs.append(ssh_spec(dev.entry, kh.read_text() if kh.is_file() else ""))
        profiles.add(dev.entry.profile)
    if len(profiles) != 1:
        raise EdgecError(f"--device: all devices of one run must share a profile, got {sorted(profiles)}")
    profile = profiles.pop()
    farm = RayFarm(specs, profile, cluster)
    ok = [n for n in farm.nodes if not n.missing]
    err.print(f"farm: {len(ok)} of {len(farm.nodes)} node(s) build for {profile} "
              f"({sum(n.cpus for n in ok):g} CPUs); devices: {', '.join(s.name for s in specs)}")
    for n in farm.nodes:
        if n.missing:
            err.print(f"[yellow]farm: node {n.node} gets no builds: missing {', '.join(n.missing)}[/]")
    return farm, profile


def _us(c: float | None) -> str:
    if c is None:
        return "-"
    us = c * 1e6
    return f"{us:.2f}" if us < 10 else f"{us:.1f}" if us < 100 else f"{us:.0f}"


def _speedup(default: float | None, best: float | None) -> str:
    return f"{default / best:.2f}x" if default and best else "-"


def report_table(reports: list) -> Table:  # noqa: ANN001 - list[TaskReport] or TuneReports
    """Per task default vs tuned (min µs of the kernel), trials used of the space, seconds
    spent and the budget share; the model total (µs x nodes) at the bottom. Fits 80 columns."""
    budget = getattr(reports, "budget_s", None)
    t = Table(title="tuning: best vs default per task (µs of one kernel)", box=box.SIMPLE_HEAD,
              show_footer=True, show_edge=False, pad_edge=False, padding=(0, 1), collapse_padding=True,
              title_justify="left")
    for name, just in (("task", "left"), ("n", "right"), ("trials", "right"), ("default", "right"),
                       ("tuned", "right"), ("gain", "right"), ("time", "right")):
        t.add_column(name, justify=just)  # type: ignore[arg-type]
    if budget:
        t.add_column("share", justify="right")
    dsum = bsum = 0.0
    complete = bool(reports)
    for r in reports:
        row = [r.task.describe(), str(r.task.count), f"{r.trials}/{r.space_size}", _us(r.default_cost),
               _us(r.best_cost), _speedup(r.default_cost, r.best_cost), f"{r.seconds:.0f}s"]
        if budget:
            row.append("-" if r.share_s is None else f"{100 * r.share_s / budget:.0f}%")
        t.add_row(*row)
        if r.default_cost and r.best_cost:
            dsum += r.default_cost * r.task.count
            bsum += r.best_cost * r.task.count
        else:
            complete = False
    elapsed = getattr(reports, "elapsed_s", 0.0) or sum(r.seconds for r in reports)
    foot = [f"total ({len(reports)} tasks)", str(sum(r.task.count for r in reports)),
            f"{sum(r.trials for r in reports)}/{sum(r.space_size for r in reports)}", _us(dsum) if complete else "-",
            _us(bsum) if complete else "-", _speedup(dsum, bsum) if complete else "-", f"{elapsed:.0f}s"]
    if budget:
        foot.append(f"{100 * elapsed / budget:.0f}%")
    for col, text in zip(t.columns, foot):
        col.footer = text
    return t


def report_notes(reports: list) -> list[str]:  # noqa: ANN001
    """Lines under the table: errors per task, the budget, the warm start."""
    lines = [f"{r.task.describe()}: " + ", ".join(f"{k} {v}" for k, v in sorted(r.errors.items()))
             for r in reports if r.errors]
    lines = [f"errors: {x}" for x in lines]
    lines.append("n: nodes of the model; trials: measured/space (resumed included); gain: default/tuned;"
                 " total: sum of µs x n")
    budget = getattr(reports, "budget_s", None)
    if budget:
        from edgec.tune.budget import format_duration

        lines.append(f"budget {format_duration(budget)}: used {getattr(reports, 'elapsed_s', 0.0):.0f}s; "
                     "share: of the budget, given when the task started")
    warm = getattr(reports, "warm", None)
    if warm is not None:
        lines.append(warm.summary() + " (not counted in trials)")
    return lines


def tune_command(
    model: Annotated[Path, typer.Argument(help="ONNX model file")],
    device: Annotated[list[str], typer.Option(
        "--device", "-d", help="registered device name, or `local` for this machine (repeat for a pool)")],
    log: Annotated[Path, typer.Option("--log", help="tuning log (JSON lines), appended per measurement")],
    trials: Annotated[Optional[int], typer.Option(
        help="measured configs per task (default 64); with --budget a cap per task (default: none)")] = None,
    budget: Annotated[Optional[str], typer.Option(
        "--budget", help="wall time of the whole run, e.g. 90s, 10m, 1h: shared over the tasks by "
        "FLOPs, unused time rolls over; --trials becomes a cap")] = None,
    warm_start: Annotated[Optional[list[Path]], typer.Option(
        "--warm-start", help="log of another device of the same profile: trains the cost model and "
        "its best configs are measured first (repeatable; never copied into --log)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue LOG: skip configs measured")] = False,
    report: Annotated[bool, typer.Option("--report", help="print per-task best vs default at the end")] = False,
    batch: Annotated[int, typer.Option(help="configs built and measured per batch")] = 8,
    early_stop: Annotated[Optional[int], typer.Option(
        "--early-stop", help="stop a task after N trials without a new best")] = None,
    max_tasks: Annotated[Optional[int], typer.Option("--max-tasks", help="tune only the N biggest tasks")] = None,
    min_time: Annotated[float, typer.Option("--min-time", help="seconds of timed runs per config")] = 0.05,
    input_shape: Annotated[Optional[list[str]], typer.Option(
        "--input-shape", help="fix a dynamic input shape: NAME=D0,D1,... (repeatable)")] = None,
    trust_new_host: Annotated[bool, typer.Option(
        "--trust-new-host", help="record an unknown device host key")] = False,
    seed: Annotated[int, typer.Option(help="search seed")] = 0,
    fast_math: Annotated[str, typer.Option(
        "--fast-math", help="on/off, as the build that will use the log")] = "on",
    weights: Annotated[str, typer.Option(
        help="fp32, int8 or fp16, as the build that will use the log (part of every task)")] = "fp32",
    precision: Annotated[str, typer.Option(
        help="fp32 or fp16 arithmetic, as the build that will use the log (part of every task)")] = "fp32",
    cluster: Annotated[str, typer.Option(
        "--cluster", help="pool: this machine; ray: a local Ray instance or $RAY_ADDRESS; ray://HOST:PORT")] = "pool",
) -> None:
    """Tune MODEL's kernels on devices; `edgec build --tuning-log LOG` applies the result."""
    from edgec.cli_args import parse_shapes
    from edgec.options import BuildOptions, check_compute
    from edgec.targets import get_profile
    from edgec.tune.budget import parse_duration
    from edgec.tune.farm import check_cluster
    from edgec.tune.measure import MeasureOptions
    from edgec.tune.pool import AllDevicesLost
    from edgec.tune.tuner import TuneOptions, tune

    budget_s = parse_duration(budget) if budget is not None else None
    if not model.is_file():
        raise EdgecError(f"{model}: no such model file")
    for w in warm_start or []:
        if not w.is_file():
            raise EdgecError(f"--warm-start {w}: no such tuning log")
    if trials is None:
        trials = 64 if budget_s is None else 1 << 30
    build_options = BuildOptions.from_flags(fast_math, weights=weights, precision=precision)
    check_cluster(cluster)
    if cluster == "pool":
        runners, profile = _runners(device, trust_new_host)
    else:
        runners, profile = _farm(device, trust_new_host, cluster)
    check_compute(build_options, [get_profile(profile)])
    opts = TuneOptions(trials=trials, batch=batch, early_stop=early_stop, seed=seed, max_tasks=max_tasks,
                       measure=MeasureOptions(min_time_s=min_time), budget_s=budget_s,
                       warm_start=tuple(warm_start or ()))
    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("best {task.fields[best]} µs (default {task.fields[default]})"), TimeRemainingColumn())
    bars: dict[str, int] = {}
    with Progress(*cols, console=err, transient=False) as prog:
        def on(event: str, r) -> None:  # noqa: ANN001
            if r.task.key not in bars:
                bars[r.task.key] = prog.add_task(r.task.describe(), total=min(trials, r.space_size),
                                                 best="-", default="-")
            prog.update(bars[r.task.key], completed=r.trials, best=_us(r.best_cost), default=_us(r.default_cost))

        try:
            reports = tune(model, runners, log, profile, opts, resume=resume, progress=on,
                           input_shapes=parse_shapes(input_shape or []), build_options=build_options,
                           note=lambda line: prog.console.print(line, highlight=False))
        except AllDevicesLost as exc:
            err.print(f"[bold red]device lost:[/] {exc}")
            raise typer.Exit(1) from None
        finally:
            if cluster != "pool":
                runners.close()
    if report or not reports:
        err.print(report_table(reports))
        for line in report_notes(reports):
            err.print(line, highlight=False)
    flags = "".join(f" --{k} {v}" for k, v in (("fast-math", fast_math), ("weights", weights),
                                               ("precision", precision))
                    if (k, v) not in (("fast-math", "on"), ("weights", "fp32"), ("precision", "fp32")))
    err.print(f"log: {log} — apply with `edgec build {model} --tuning-log {log}{flags}`")


def register(app: typer.Typer) -> None:
    app.command("tune")(tune_command)

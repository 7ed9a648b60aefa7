"""`edgec tune MODEL --device NAME|local --trials N --log LOG [--resume] [--report]
[--cluster pool|ray|ray://HOST:PORT]`: AutoTVM-style tuning (edgec.tune) with rich progress,
on this machine's device pool or on a Ray farm; registered on the main app by cli.py."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer
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
    return "-" if c is None else f"{c * 1e6:.2f}"


def report_table(reports: list) -> Table:  # noqa: ANN001 - list[TaskReport]
    t = Table(title="tuning: best vs default per task (min µs of the kernel)")
    for col in ("task", "nodes", "trials", "space", "default µs", "best µs", "speed-up", "best knobs", "errors"):
        t.add_column(col)
    for r in reports:
        sp = r.speedup
        t.add_row(r.task.describe(), str(r.task.count), str(r.trials), str(r.space_size), _us(r.default_cost),
                  _us(r.best_cost), "-" if sp is None else f"{sp:.2f}x",
                  " ".join(f"{k}={v}" for k, v in sorted(r.best_knobs.items())) if r.best_knobs else "-",
                  ", ".join(f"{k} {v}" for k, v in sorted(r.errors.items())) or "-")
    return t


def tune_command(
    model: Annotated[Path, typer.Argument(help="ONNX model file")],
    device: Annotated[list[str], typer.Option(
        "--device", "-d", help="registered device name, or `local` for this machine (repeat for a pool)")],
    log: Annotated[Path, typer.Option("--log", help="tuning log (JSON lines), appended per measurement")],
    trials: Annotated[int, typer.Option(help="measured configs per task")] = 64,
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
    cluster: Annotated[str, typer.Option(
        "--cluster", help="pool: this machine; ray: a local Ray instance or $RAY_ADDRESS; ray://HOST:PORT")] = "pool",
) -> None:
    """Tune MODEL's kernels on devices; `edgec build --tuning-log LOG` applies the result."""
    from edgec.cli_args import parse_shapes
    from edgec.options import BuildOptions
    from edgec.tune.farm import check_cluster
    from edgec.tune.measure import MeasureOptions
    from edgec.tune.pool import AllDevicesLost
    from edgec.tune.tuner import TuneOptions, tune

    if not model.is_file():
        raise EdgecError(f"{model}: no such model file")
    build_options = BuildOptions.from_flags(fast_math, weights=weights)
    check_cluster(cluster)
    if cluster == "pool":
        runners, profile = _runners(device, trust_new_host)
    else:
        runners, profile = _farm(device, trust_new_host, cluster)
    opts = TuneOptions(trials=trials, batch=batch, early_stop=early_stop, seed=seed, max_tasks=max_tasks,
                       measure=MeasureOptions(min_time_s=min_time))
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
                           input_shapes=parse_shapes(input_shape or []), build_options=build_options)
        except AllDevicesLost as exc:
            err.print(f"[bold red]device lost:[/] {exc}")
            raise typer.Exit(1) from None
        finally:
            if cluster != "pool":
                runners.close()
    if report or not reports:
        err.print(report_table(reports))
    flags = "".join(f" --{k} {v}" for k, v in (("fast-math", fast_math), ("weights", weights))
                    if (k, v) not in (("fast-math", "on"), ("weights", "fp32")))
    err.print(f"log: {log} — apply with `edgec build {model} --tuning-log {log}{flags}`")


def register(app: typer.Typer) -> None:
    app.command("tune")(tune_command)

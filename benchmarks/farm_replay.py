"""The replay log of the farm scale study (benchmarks/farm_scale.py): every config of a few small
MobileNetV2 tasks measured on this machine, each one twice (two rounds over the space, so the
log shows the device's noise between repeated measurements of the same config).

    python -m benchmarks.farm_scale --make-replay          # rewrites benchmarks/data/replay_mobilenetv2_host.jsonl

The tasks are the four of MobileNetV2 (224, host) with the fewest FLOPs per config: the whole
run builds ~210 configs and measures each twice, a few minutes on 2 cores."""

from __future__ import annotations

import functools
import shutil
import tempfile
import time
from pathlib import Path

from edgec.tune.log import TuningLog, make_record
from edgec.tune.measure import LocalRunner, MeasureOptions, MeasureResult, TaskBuilder
from edgec.tune.tasks import Task, extract_tasks

REPLAY = Path(__file__).resolve().parent / "data" / "replay_mobilenetv2_host.jsonl"
REPLAY_OPTS = MeasureOptions(min_time_s=0.02)
N_TASKS = 4
ROUNDS = 2


def replay_tasks(n: int = N_TASKS) -> list[Task]:
    """The `n` MobileNetV2 host tasks with the fewest FLOPs (cheap to build and measure)."""
    from edgec.models.mobilenet_v2 import mobilenet_v2

    tasks = extract_tasks(mobilenet_v2(), "host")
    return sorted(tasks, key=lambda t: (t.flops, t.key))[:n]


def _append(log: TuningLog, task: dict, r: MeasureResult) -> None:
    log.append(make_record(task, r.index, r.knobs, r.costs_s, r.error, r.device, detail=r.detail))


def make_replay(path: Path = REPLAY, n_tasks: int = N_TASKS, rounds: int = ROUNDS,
                say: object = print) -> Path:
    """Measure every config of the replay tasks `rounds` times on this machine into `path`."""
    path = Path(path)
    if path.exists():
        path.unlink()
    log = TuningLog(path)
    runner = LocalRunner()
    runner.name = "host"
    for t in replay_tasks(n_tasks):
        work = Path(tempfile.mkdtemp(prefix="edgec-replay-"))
        t0 = time.monotonic()
        try:
            builder = TaskBuilder(t.task, work, REPLAY_OPTS.seed)
            space = t.space()
            built = [builder.build(i, space.knobs(i)) for i in range(len(space))]
            for b in built:
                if b.error:
                    log.append(make_record(t.task, b.index, b.knobs, [], b.error, "build", detail=b.detail))
            ok = [b for b in built if not b.error]
            for _ in range(rounds):
                runner.measure(builder, ok, REPLAY_OPTS, functools.partial(_append, log, t.task))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        say(f"{t.describe()}: {len(space)} configs, {len(built) - len(ok)} failed builds, "
            f"{time.monotonic() - t0:.0f} s")
    return path


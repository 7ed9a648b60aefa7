"""`tune`: for each task of a model, measure batches of configs on a pool of devices, picking
each batch with the XGBoost rank model + simulated annealing (random until the model has data;
a model trained on earlier tasks of the same template is used from the first batch), the
default schedule always measured first as the baseline. Every result is one log line, written
as it arrives; `resume` re-reads the log, skips what was measured and counts it in the budget."""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import onnx

from edgec.errors import EdgecError
from edgec.options import BuildOptions
from edgec.tune.cost_model import CostModel, features
from edgec.tune.farm import Farm, PoolFarm
from edgec.tune.log import TuningLog, cost, make_record, read_log
from edgec.tune.measure import MeasureOptions, MeasureResult
from edgec.tune.search import anneal, pick_batch
from edgec.tune.space import ConfigSpace
from edgec.tune.tasks import Task, extract_tasks


@dataclass
class TuneOptions:
    trials: int = 64  # measured configs per task (resumed ones count)
    batch: int = 8
    early_stop: int | None = None  # stop a task after this many trials without a new best
    epsilon: float = 0.05
    seed: int = 0
    measure: MeasureOptions = field(default_factory=MeasureOptions)
    max_tasks: int | None = None
    kernels: tuple[str, ...] = ("gemv", "conv2d")


@dataclass
class TaskReport:
    task: Task
    space_size: int
    default_cost: float | None = None
    best_cost: float | None = None
    best_knobs: dict | None = None
    trials: int = 0  # measurements in the log (not device_lost), resumed included
    new: int = 0  # measured by this run
    errors: Counter = field(default_factory=Counter)

    @property
    def speedup(self) -> float | None:
        if self.default_cost and self.best_cost:
            return self.default_cost / self.best_cost
        return None


Progress = Callable[[str, TaskReport], None]


def _index_in(space: ConfigSpace, knobs: dict) -> int | None:
    try:
        return space.index(knobs)
    except EdgecError:
        return None


class _TaskRun:
    def __init__(self, t: Task, rep: TaskReport, model: CostModel, log: TuningLog, build_device: str):
        self.t, self.rep, self.model, self.log, self.build_device = t, rep, model, log, build_device
        self.space = t.space()
        self.measured: set[int] = set()
        self.since_best = 0

    def absorb(self, index: int, knobs: dict, c: float | None, error: str | None) -> None:
        if error == "device_lost":
            return
        self.measured.add(index)
        self.rep.trials += 1
        self.model.add(self.t.key, features(self.t.task, knobs), c)
        if error:
            self.rep.errors[error] += 1
        if knobs == self.t.default_knobs and c is not None:
            self.rep.default_cost = c
        if c is not None and (self.rep.best_cost is None or c < self.rep.best_cost):
            self.rep.best_cost, self.rep.best_knobs = c, dict(knobs)
            self.since_best = 0
        else:
            self.since_best += 1

    def record(self, r: MeasureResult) -> None:
        self.log.append(make_record(self.t.task, r.index, r.knobs, r.costs_s, r.error,
                                    r.device or self.build_device, detail=r.detail))
        if r.error == "device_lost":
            self.rep.errors["device_lost"] += 1
            return
        self.rep.new += 1
        self.absorb(r.index, r.knobs, r.cost, r.error)


def tune(model: onnx.ModelProto | str | os.PathLike, runners: list | Farm, log_path: str | os.PathLike,
         device_profile: str = "host", options: TuneOptions | None = None, resume: bool = False,
         progress: Progress | None = None, input_shapes: dict[str, list[int]] | None = None,
         tasks: list[Task] | None = None, build_options: BuildOptions | None = None) -> list[TaskReport]:
    """Tune `model`'s tasks for `device_profile`, measuring on `runners` (LocalRunner /
    SSHRunner, pooled here) or on a `Farm` (e.g. RayFarm; the caller closes it). Raises
    AllDevicesLost when every device failed (the log has all results)."""
    opts = options or TuneOptions()
    if opts.trials < 0 or opts.batch < 1:
        raise EdgecError("--trials must be >= 0 and the batch size >= 1")
    records = read_log(log_path)
    if records and not resume and opts.trials > 0:
        raise EdgecError(f"{log_path} already holds {len(records)} measurement(s): pass --resume to "
                         "continue it, or choose a new --log file")
    if tasks is None:
        tasks = [t for t in extract_tasks(model, device_profile, input_shapes, build_options) if t.kernel in opts.kernels]
        tasks = tasks[:opts.max_tasks] if opts.max_tasks is not None else tasks
    log = TuningLog(log_path)
    models: dict[str, CostModel] = {}
    rng = random.Random(opts.seed)
    reports: list[TaskReport] = []
    farm = PoolFarm(runners, opts.measure.seed) if isinstance(runners, list) else runners
    try:
        for t in tasks:
            model_ = models.setdefault(t.kernel, CostModel())
            rep = TaskReport(t, len(t.space()))
            reports.append(rep)
            run = _TaskRun(t, rep, model_, log, "build")
            for r in records:  # resume: what the log already has
                # by knobs: a log from an older space (spilling tiles offered) has other indices
                index = _index_in(run.space, r["config"]["knobs"])
                if r["task"] == t.task and r["result"].get("error") != "device_lost" \
                        and index is not None and index not in run.measured:
                    run.absorb(index, r["config"]["knobs"], cost(r), r["result"].get("error"))
            assert run.measured <= set(range(len(run.space)))
            if run.measured:
                model_.fit()
            if progress:
                progress("start", rep)
            _tune_task(run, farm, opts, rng, progress)
            if progress:
                progress("done", rep)
    finally:
        if farm is not runners:
            farm.close()
    return reports


def _next_batch(run: _TaskRun, opts: TuneOptions, rng: random.Random, size: int) -> list[int]:
    space = run.space
    first: list[int] = []
    try:
        d = space.index(run.t.default_knobs)
        if d not in run.measured:
            first = [d]
    except EdgecError:
        pass
    exclude = run.measured | set(first)
    if run.model.trained:
        score = lambda idx: run.model.predict(
            [features(run.t.task, space.knobs(i)) for i in idx])
        ranked = anneal(space, score, exclude, keep=max(4 * size, 16), rng=rng)
    else:
        ranked = []
    return first + pick_batch(space, ranked, exclude, size - len(first), rng, opts.epsilon)


def _tune_task(run: _TaskRun, farm: Farm, opts: TuneOptions, rng: random.Random,
               progress: Progress | None) -> None:
    rep = run.rep
    while rep.trials < opts.trials and len(run.measured) < len(run.space):
        if opts.early_stop is not None and run.since_best >= opts.early_stop and rep.best_cost is not None:
            break
        batch = _next_batch(run, opts, rng, min(opts.batch, opts.trials - rep.trials))
        if not batch:
            break
        try:
            farm.run_batch(run.t.task, [(i, run.space.knobs(i)) for i in batch], opts.measure, run.record)
        finally:
            run.model.fit()
            if progress:
                progress("batch", rep)

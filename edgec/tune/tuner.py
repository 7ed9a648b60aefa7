"""`tune`: for each task of a model, measure batches of configs on a pool of devices, picking
each batch with the XGBoost rank model + simulated annealing (random until the model has data;
a model trained on earlier tasks of the same template is used from the first batch), the
default schedule always measured first as the baseline. Every result is one log line, written
as it arrives; `resume` re-reads the log, skips what was measured and counts it in the trials.

Whole-model tuning: `budget_s` bounds the run's wall time and shares it over the tasks by
weight (edgec.tune.budget; `trials` is then a cap per task), and `warm_start` logs of other
devices of the same profile train the cost model first and put their best configs in each
task's first batch (edgec.tune.warm)."""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import onnx

from edgec.errors import EdgecError
from edgec.options import BuildOptions
from edgec.tune.budget import Budget
from edgec.tune.cost_model import CostModel, features
from edgec.tune.farm import Farm, PoolFarm
from edgec.tune.log import TuningLog, cost, make_record, read_log
from edgec.tune.measure import MeasureOptions, MeasureResult
from edgec.tune.search import anneal, pick_batch
from edgec.tune.tasks import Task, extract_tasks
from edgec.tune.warm import WarmStart, load_warm_start


@dataclass
class TuneOptions:
    trials: int = 64  # measured configs per task (resumed ones count); a cap with a budget
    batch: int = 8
    early_stop: int | None = None  # stop a task after this many trials without a new best
    epsilon: float = 0.05
    seed: int = 0
    measure: MeasureOptions = field(default_factory=MeasureOptions)
    max_tasks: int | None = None
    kernels: tuple[str, ...] = ("gemv", "conv2d")
    budget_s: float | None = None  # wall time of the whole run (tasks share it by weight)
    warm_start: tuple[str | os.PathLike, ...] = ()  # logs of other devices of the profile


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
    seconds: float = 0.0  # wall time this run spent on the task
    share_s: float | None = None  # seconds the budget gave it when it started
    warm: int = 0  # warm-start records of other devices used (never counted in trials)

    @property
    def speedup(self) -> float | None:
        if self.default_cost and self.best_cost:
            return self.default_cost / self.best_cost
        return None


class TuneReports(list):
    """The task reports in tuning order, with what the run as a whole did."""

    budget_s: float | None = None
    elapsed_s: float = 0.0
    warm: WarmStart | None = None


Progress = Callable[[str, TaskReport], None]


class _TaskRun:
    def __init__(self, t: Task, rep: TaskReport, model: CostModel, log: TuningLog, build_device: str):
        self.t, self.rep, self.model, self.log, self.build_device = t, rep, model, log, build_device
        self.space = t.space()
        self.measured: set[int] = set()
        self.since_best = 0
        self.warm_first: list[int] = []  # other devices' best configs, for the first batch
        self.reshare: tuple[int, float] | None = None  # (task index, start) to share again

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
         tasks: list[Task] | None = None, build_options: BuildOptions | None = None,
         note: Callable[[str], None] | None = None) -> TuneReports:
    """Tune `model`'s tasks for `device_profile`, measuring on `runners` (LocalRunner /
    SSHRunner, pooled here) or on a `Farm` (e.g. RayFarm; the caller closes it). Raises
    AllDevicesLost when every device failed (the log has all results). `note` gets one-line
    messages (what the warm start used)."""
    opts = options or TuneOptions()
    t_start = time.monotonic()
    if opts.trials < 0 or opts.batch < 1:
        raise EdgecError("--trials must be >= 0 and the batch size >= 1")
    if opts.budget_s is not None and opts.budget_s <= 0:
        raise EdgecError("--budget must be more than 0 seconds")
    records = read_log(log_path)
    if records and not resume and opts.trials > 0:
        raise EdgecError(f"{log_path} already holds {len(records)} measurement(s): pass --resume to "
                         "continue it, or choose a new --log file")
    if tasks is None:
        tasks = [t for t in extract_tasks(model, device_profile, input_shapes, build_options) if t.kernel in opts.kernels]
        tasks = tasks[:opts.max_tasks] if opts.max_tasks is not None else tasks
    models: dict[str, CostModel] = {t.kernel: CostModel() for t in tasks}
    reports = TuneReports()
    reports.budget_s = opts.budget_s
    if opts.warm_start:
        reports.warm = _warm(opts.warm_start, tasks, models)
        if note:
            note(reports.warm.summary())
    budget = None
    if opts.budget_s is not None:  # the clock started with the run (task extraction included)
        budget = Budget(opts.budget_s, [t.flops * t.count for t in tasks], opts.batch, start=t_start)
    log = TuningLog(log_path)
    rng = random.Random(opts.seed)
    farm = PoolFarm(runners, opts.measure.seed) if isinstance(runners, list) else runners
    try:
        for i, t in enumerate(tasks):
            t0 = time.monotonic()
            model_ = models[t.kernel]
            rep = TaskReport(t, len(t.space()))
            reports.append(rep)
            run = _TaskRun(t, rep, model_, log, "build")
            for r in records:  # resume: what the log already has
                # by knobs: a log from an older space (spilling tiles offered) has other indices
                index = run.space.find(r["config"]["knobs"])
                if r["task"] == t.task and r["result"].get("error") != "device_lost" \
                        and index is not None and index not in run.measured:
                    run.absorb(index, r["config"]["knobs"], cost(r), r["result"].get("error"))
            assert run.measured <= set(range(len(run.space)))
            if reports.warm is not None:
                rep.warm = len(reports.warm.by_task.get(t.key, []))
                run.warm_first = [j for j in reports.warm.best(t.key, opts.batch) if j not in run.measured]
            if run.measured:
                model_.fit()
            if budget is not None:
                rep.share_s = budget.share(i)
                run.reshare = (i, t0) if budget.guessing else None
            rep.seconds = time.monotonic() - t0
            if progress:
                progress("start", rep)
            _tune_task(run, farm, opts, rng, progress, budget)
            if progress:
                progress("done", rep)
    finally:
        if farm is not runners:
            farm.close()
        reports.elapsed_s = time.monotonic() - t_start
    return reports


def _warm(paths: tuple, tasks: list[Task], models: dict[str, CostModel]) -> WarmStart:
    """Load the warm-start logs and train each template's model on them (a rank group per
    log and task, apart from this device's measurements)."""
    ws = load_warm_start(list(paths), tasks)
    for t in tasks:
        for r in ws.by_task.get(t.key, []):
            models[t.kernel].add(f"warm{r.source}:{t.key}", features(t.task, r.knobs), r.cost)
    for m in models.values():
        if m.samples:
            m.fit()
    return ws


def _next_batch(run: _TaskRun, opts: TuneOptions, rng: random.Random, size: int) -> list[int]:
    space = run.space
    first: list[int] = []
    try:
        d = space.index(run.t.default_knobs)
        if d not in run.measured:
            first = [d]
    except EdgecError:
        pass
    # Another device's best configs, right after the default, in up to half of the first batch.
    warm = [i for i in run.warm_first if i not in run.measured and i not in first]
    first += warm[:max(0, min(max(1, size // 2), size - len(first)))]
    run.warm_first = []
    exclude = run.measured | set(first)
    if run.model.trained:
        score = lambda idx: run.model.predict(
            [features(run.t.task, space.knobs(i)) for i in idx])
        ranked = anneal(space, score, exclude, keep=max(4 * size, 16), rng=rng)
    else:
        ranked = []
    return first + pick_batch(space, ranked, exclude, size - len(first), rng, opts.epsilon)


def _tune_task(run: _TaskRun, farm: Farm, opts: TuneOptions, rng: random.Random,
               progress: Progress | None, budget: Budget | None = None) -> None:
    rep = run.rep
    while rep.trials < opts.trials and len(run.measured) < len(run.space):
        if opts.early_stop is not None and run.since_best >= opts.early_stop and rep.best_cost is not None:
            break
        size = min(opts.batch, opts.trials - rep.trials)
        if budget is not None:
            size = budget.batch_size(size, (rep.share_s or 0.0) - rep.seconds, first=not run.measured)
            if size <= 0:
                break
        t0 = time.monotonic()
        batch = _next_batch(run, opts, rng, size)
        if not batch:
            break
        try:
            farm.run_batch(run.t.task, [(i, run.space.knobs(i)) for i in batch], opts.measure, run.record)
        finally:
            run.model.fit()
            dt = time.monotonic() - t0
            rep.seconds += dt
            if budget is not None:
                budget.observe(len(batch), dt)
                if run.reshare is not None:  # the share was computed from a guessed speed
                    rep.share_s, run.reshare = budget.share(run.reshare[0], at=run.reshare[1]), None
            if progress:
                progress("batch", rep)

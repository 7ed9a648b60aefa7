"""Simulated devices for the tuning farm's scale study (issue 20; benchmarks/farm_scale.py).

Why: the scheduler (RayFarm + the tuner's driver loop) should be studied with 1..16 devices on
one machine, without a cluster of boards. A `SimulatedRunner` replays *measured* costs from a
tuning log: for a config it reports a cost drawn around that config's recorded costs, with the
noise seen between repeated measurements in the log, and it sleeps as long as the real device
would have spent measuring it. It never runs a binary, and every result says `simulated` in its
detail, so a simulated log can never pass for a real one. A config the log has no record of is
an honest `runtime` error ("not in the replay log"); one the log only has errors for replays
that error.

`simulated_spec` makes the RunnerSpec of a simulated device actor (picklable), and
`simulated_build` (built lazily: this module imports without Ray) is a Ray remote function with
`edgec.tune.ray_actors.build_config`'s signature that sleeps instead of building."""

from __future__ import annotations

import functools
import json
import math
import os
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from edgec.tune.keys import task_key
from edgec.tune.log import cost, read_log
from edgec.tune.measure import Built, Emit, MeasureOptions, MeasureResult

SIGMA_FLOOR = 0.01  # relative noise never below 1 %
DEFAULT_OVERHEAD_S = 0.05  # per config: process start, output transfer and check
DEFAULT_BUILD_S = 0.02


def config_key(task: dict, knobs: dict) -> tuple[str, str]:
    return task_key(task), json.dumps(knobs, sort_keys=True, separators=(",", ":"))


class Replay:
    """The records of a tuning log by (task key, knobs): successful costs and error kinds, and
    the relative noise between repeated measurements of one config."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.costs: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.errors: dict[tuple[str, str], list[str]] = defaultdict(list)
        for r in read_log(self.path):
            k = config_key(r["task"], r["config"]["knobs"])
            c = cost(r)
            if c is not None and c > 0:
                self.costs[k].append(c)
            elif r["result"].get("error") not in (None, "device_lost"):
                self.errors[k].append(r["result"]["error"])
        self.sigma = max(SIGMA_FLOOR, noise_sigma(self.costs.values()))

    def center(self, key: tuple[str, str]) -> float | None:
        """The geometric mean of a config's recorded costs (None: no success recorded)."""
        cs = self.costs.get(key)
        return math.exp(statistics.fmean(math.log(c) for c in cs)) if cs else None

    def best(self) -> dict[str, tuple[str, float]]:
        """Per task key, the knobs (JSON) and centre cost of its fastest recorded config."""
        out: dict[str, tuple[str, float]] = {}
        for (tk, kn) in self.costs:
            c = self.center((tk, kn))
            if c is not None and (tk not in out or c < out[tk][1]):
                out[tk] = (kn, c)
        return out


def noise_sigma(groups: object) -> float:
    """Pooled standard deviation of log(cost) within configs measured more than once (0.0 when
    no config was): the lognormal sigma of one measurement."""
    ss, dof = 0.0, 0
    for cs in groups:  # type: ignore[attr-defined]
        if len(cs) < 2:
            continue
        logs = [math.log(c) for c in cs]
        m = statistics.fmean(logs)
        ss += sum((x - m) ** 2 for x in logs)
        dof += len(logs) - 1
    return math.sqrt(ss / dof) if dof else 0.0


def device_seconds(cost_s: float, opts: MeasureOptions) -> float:
    """What the bench harness spends on one config: warm-up runs, then `runs` timed runs or
    at least `min_time_s` of them."""
    return opts.warmup * cost_s + max(opts.runs * cost_s, opts.min_time_s)


class SimulatedRunner:
    """A device that replays `replay_log` (see the module docstring). `time_scale` scales the
    time it sleeps (1.0: as long as the real device took)."""

    def __init__(self, replay_log: str | os.PathLike | Replay, name: str = "sim-0", seed: int = 0,
                 time_scale: float = 1.0, overhead_s: float = DEFAULT_OVERHEAD_S,
                 sleep: Callable[[float], None] = time.sleep):
        self.replay = replay_log if isinstance(replay_log, Replay) else Replay(replay_log)
        self.name, self.time_scale, self.overhead_s = name, time_scale, overhead_s
        self.rng = random.Random(f"{seed}:{name}")
        self.sleep = sleep
        self.slept_s = 0.0  # simulated device time so far

    def draw(self, task: dict, knobs: dict) -> float | None:
        c = self.replay.center(config_key(task, knobs))
        return None if c is None else c * math.exp(self.rng.gauss(0.0, self.replay.sigma))

    def measure(self, checker: object, batch: list[Built], opts: MeasureOptions, emit: Emit) -> None:
        """`checker`: the task's TaskBuilder (or the actor's lazy checker): only its `task` is
        read; nothing is checked, since nothing runs."""
        task = checker.task  # type: ignore[attr-defined]
        src = self.replay.path.name
        for b in batch:
            key = config_key(task, b.knobs)
            c = self.draw(task, b.knobs)
            if c is None:
                errs = self.replay.errors.get(key)
                kind = errs[0] if errs else "runtime"
                detail = f"simulated: replayed {kind} of {src}" if errs else f"simulated: not in the replay log {src}"
                self._wait(self.overhead_s)
                emit(MeasureResult(b.index, b.knobs, [], kind, detail, self.name))
                continue
            self._wait(device_seconds(c, opts) + self.overhead_s)
            n = len(self.replay.costs[key])
            emit(MeasureResult(b.index, b.knobs, [c], None, f"simulated: replayed {n} sample(s) of {src}, "
                               f"sigma={self.replay.sigma:.3f}", self.name))

    def _wait(self, seconds: float) -> None:
        s = seconds * self.time_scale
        self.slept_s += s
        if s > 0:
            self.sleep(s)

    def recover(self) -> bool:
        return True

    def close(self) -> None:
        pass


def _make_simulated(replay_log: str, name: str, seed: int, time_scale: float, overhead_s: float,
                    work: Path) -> SimulatedRunner:
    return SimulatedRunner(replay_log, name, seed, time_scale, overhead_s)


def simulated_spec(replay_log: str | os.PathLike, index: int, seed: int = 0, time_scale: float = 1.0,
                   overhead_s: float = DEFAULT_OVERHEAD_S):  # noqa: ANN201 - RunnerSpec (needs Ray)
    """The RunnerSpec of simulated device `sim-<index>` (its factory pickles by reference)."""
    from edgec.tune.ray_actors import RunnerSpec

    name = f"sim-{index}"
    return RunnerSpec(name, functools.partial(_make_simulated, str(Path(replay_log).resolve()), name, seed,
                                              time_scale, overhead_s))


def _sleep_build(build_s: float) -> tuple[tuple[str | None, str], bytes]:
    time.sleep(build_s)
    return (None, "simulated"), b""


@functools.cache
def simulated_build_fn(build_s: float = DEFAULT_BUILD_S):  # noqa: ANN201 - a Ray RemoteFunction
    """A Ray remote function like `build_config` that sleeps `build_s` and builds nothing (one
    per `build_s`: Ray exports a new function to its workers on first use)."""
    import ray

    def simulated_build(task: dict, index: int, knobs: dict, seed: int) -> tuple[tuple[str | None, str], bytes]:
        return _sleep_build(build_s)

    return ray.remote(num_returns=2)(simulated_build)


def __getattr__(name: str) -> object:  # `simulated_build` is made on first use (needs Ray)
    if name == "simulated_build":
        fn = simulated_build_fn()
        globals()[name] = fn
        return fn
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

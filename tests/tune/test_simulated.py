"""Simulated devices (edgec.tune.simulated, the farm scale study of issue 20): replayed costs
are the replay log's within its noise and say `simulated`, a config the log lacks is an honest
error, and a small RayFarm run over two simulated devices logs each config once."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from edgec.tune.keys import make_task
from edgec.tune.log import TuningLog, make_record, read_log
from edgec.tune.measure import Built, MeasureOptions
from edgec.tune.simulated import Replay, SimulatedRunner, device_seconds, noise_sigma

REPO = Path(__file__).resolve().parents[2]
REPLAY = REPO / "benchmarks" / "data" / "replay_mobilenetv2_host.jsonl"
OPTS = MeasureOptions(min_time_s=0.02)
TASK = make_task("gemv", [[1, 64], [64, 32]], "float32", "host")


class _Checker:
    def __init__(self, task: dict):
        self.task = task


def _log(tmp_path: Path) -> Path:
    """Config a: 1.00 and 1.02 ms; b: 2 ms once; c: only a compile error."""
    p = tmp_path / "replay.jsonl"
    log = TuningLog(p)
    for knobs, costs in (({"a": 1}, [1.0e-3, 1.02e-3]), ({"b": 1}, [2.0e-3])):
        for c in costs:
            log.append(make_record(TASK, 0, knobs, [c], None, "host"))
    log.append(make_record(TASK, 2, {"c": 1}, [], "compile", "build", detail="boom"))
    return p


def _run(runner: SimulatedRunner, knobs: list[dict]) -> list:
    out: list = []
    runner.measure(_Checker(TASK), [Built(i, k) for i, k in enumerate(knobs)], OPTS, out.append)
    return out


def test_replayed_costs_are_the_logs_within_noise_and_labelled(tmp_path: Path) -> None:
    slept: list[float] = []
    r = SimulatedRunner(_log(tmp_path), "sim-3", seed=1, time_scale=2.0, overhead_s=0.01, sleep=slept.append)
    sigma = r.replay.sigma
    assert sigma == pytest.approx(noise_sigma([[1.0e-3, 1.02e-3]]))  # the repeated config's spread
    res = _run(r, [{"a": 1}] * 200 + [{"b": 1}])
    costs = [x.cost for x in res[:200]]
    center = math.sqrt(1.0e-3 * 1.02e-3)
    logs = [math.log(c / center) for c in costs]
    assert abs(sum(logs) / len(logs)) < 4 * sigma / math.sqrt(200)  # unbiased around the log's centre
    assert 0.5 * sigma < (sum(x * x for x in logs) / len(logs)) ** 0.5 < 1.5 * sigma
    assert len(set(costs)) > 150  # noisy, not a constant
    assert res[-1].cost == pytest.approx(2.0e-3, rel=6 * sigma)
    assert all(x.error is None and "simulated" in x.detail and x.device == "sim-3" for x in res)
    # it slept as the device would have: warm-up + max(runs x cost, min_time) + overhead, scaled
    assert slept[-1] == pytest.approx(2.0 * (device_seconds(res[-1].cost, OPTS) + 0.01))
    assert r.slept_s == pytest.approx(sum(slept))


def test_unknown_and_failed_configs_are_honest_errors(tmp_path: Path) -> None:
    r = SimulatedRunner(_log(tmp_path), "sim-0", sleep=lambda s: None)
    unknown, failed = _run(r, [{"zzz": 7}, {"c": 1}])
    assert (unknown.error, unknown.costs_s) == ("runtime", []) and "not in the replay log" in unknown.detail
    assert failed.error == "compile" and "simulated" in failed.detail and "simulated" in unknown.detail
    other = dict(TASK, shapes=[[1, 8], [8, 4]])  # same knobs, another task: not replayed
    out: list = []
    r.measure(_Checker(other), [Built(0, {"a": 1})], OPTS, out.append)
    assert out[0].error == "runtime"


def test_committed_replay_log_is_real_and_repeated() -> None:
    rep = Replay(REPLAY)
    recs = read_log(REPLAY)
    assert len({r["task"]["shapes"].__repr__() for r in recs}) >= 3
    assert all(r["device"] in ("host", "build") and "simulated" not in r["result"].get("detail", "") for r in recs)
    assert sum(len(v) >= 2 for v in rep.costs.values()) >= 100  # each config measured twice
    assert 0.01 <= rep.sigma < 0.5


# -- a tiny RayFarm run over two simulated devices ----------------------------------------------
@pytest.fixture(scope="module")
def ray_local():  # noqa: ANN201
    ray = pytest.importorskip("ray")
    if ray.is_initialized():  # another module's instance: use it
        yield ray
        return
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    yield ray
    ray.shutdown()


def test_ray_farm_with_two_simulated_devices(tmp_path: Path, ray_local: object) -> None:
    from benchmarks.farm_replay import replay_tasks
    from edgec.tune.ray_farm import RayFarm
    from edgec.tune.simulated import simulated_build_fn, simulated_spec
    from edgec.tune.tuner import TuneOptions, tune

    keys = {k for k, _ in Replay(REPLAY).costs}
    tasks = [t for t in replay_tasks() if t.key in keys][:2]
    specs = [simulated_spec(REPLAY, i, time_scale=0.05, overhead_s=0.02) for i in range(2)]
    farm = RayFarm(specs, "host", build_fn=simulated_build_fn(0.0))
    log = tmp_path / "sim.jsonl"
    try:
        reports = tune(None, farm, log, "host", TuneOptions(trials=10, batch=4, measure=OPTS), tasks=tasks)
    finally:
        farm.close()
    recs = read_log(log)
    assert len(log.read_text().splitlines()) == len(recs) == 20
    per_config = Counter((r["task"]["shapes"].__repr__(), r["config"]["index"]) for r in recs)
    assert max(per_config.values()) == 1
    assert {r["device"] for r in recs} == {"sim-0", "sim-1"}
    assert all(r["result"]["error"] is None and r["result"]["detail"].startswith("simulated") for r in recs)
    assert all(rep.trials == 10 and rep.best_cost for rep in reports)

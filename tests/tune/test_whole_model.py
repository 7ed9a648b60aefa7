"""Whole-model tuning (issue 20 scope 3): `--budget` (the run ends in time, tasks share it by
weight, every task gets its default), `--warm-start` from another device's log (its best config
in the first batch, nothing copied, other targets ignored), the `--report` table, CLI errors."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from rich.console import Console

from edgec.errors import EdgecError
from edgec.tune.budget import Budget, parse_duration
from edgec.tune.log import TuningLog, make_record, read_log
from edgec.tune.measure import MeasureOptions, MeasureResult
from edgec.tune.tasks import Task, extract_tasks
from edgec.tune.tuner import TuneOptions, tune
from tests.remote.conftest import assert_clean, cli
from tests.tune.conftest import small_model


class FakeFarm:
    """A farm that 'measures' each config in `per_config` seconds of a virtual clock (added to
    time.monotonic when `virtual` is given: the budget logic sees long measurements, the test
    does not wait for them), with a made-up cost."""

    def __init__(self, per_config: float = 0.0, virtual: list[float] | None = None):
        self.per_config, self.virtual = per_config, virtual
        self.batches: list[tuple[str, list[int]]] = []

    def run_batch(self, task: dict, batch: list, opts: MeasureOptions, record) -> None:  # noqa: ANN001
        self.batches.append((task["kernel"], [i for i, _ in batch]))
        for i, knobs in batch:
            if self.virtual is not None:
                self.virtual[0] += self.per_config
            record(MeasureResult(i, knobs, [1e-5 * (1 + (i * 7919) % 13)], None, "", "fake"))

    def close(self) -> None:
        pass


def _tasks() -> dict[str, Task]:
    return {t.kernel: t for t in extract_tasks(small_model(), "host")}


def test_parse_duration() -> None:
    assert [parse_duration(s) for s in ("90s", "10m", "1h", "1h30m", "2.5m", "45", " 2m10s ")] == \
        [90, 600, 3600, 5400, 150, 45, 130]
    for bad in ("", "10x", "m", "0s", "-5", "1m1h", "nan", "inf"):
        with pytest.raises(EdgecError, match="--budget"):
            parse_duration(bad)


def test_budget_shares_by_weight_with_floor_and_rollover() -> None:
    now = [0.0]
    b = Budget(100.0, [90.0, 9.0, 1.0], batch=4, clock=lambda: now[0], guess_s_per_config=1.0)
    first = b.share(0)  # floor 5 s each, the 85 s above the floors by weight
    assert first == pytest.approx(5 + 85 * 0.9)
    now[0] = 20.0  # the first task used 20 s of its ~81: the rest rolls over
    assert b.share(1) == pytest.approx(5 + 70 * 0.9)
    now[0] = 98.0  # 2 s left for the last task: less than its floor, it gets what is left
    assert b.share(2) == pytest.approx(2.0)
    assert b.batch_size(8, task_left=2.0, first=False) == 2
    now[0] = 100.5  # past the deadline: nothing starts, not even a default
    assert b.batch_size(8, task_left=50.0, first=True) == 0
    b2 = Budget(3.0, [1.0, 1.0], batch=4, clock=lambda: 0.0)  # floors do not fit: even split
    assert b2.share(0) == pytest.approx(1.5) and b2.batch_size(8, 0.1, first=True) == 1


def test_budget_ends_in_time_and_favours_the_big_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    virtual, real = [0.0], time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + virtual[0])
    farm = FakeFarm(2.0, virtual)  # 2 s a config: the conv's 38 configs take more than the budget
    t0 = time.monotonic()
    reps = tune(small_model(), farm, tmp_path / "b.jsonl", "host", TuneOptions(trials=1000, batch=4, budget_s=60))
    elapsed = time.monotonic() - t0
    assert elapsed <= 60 + 4 * 2.0 + 1, elapsed  # a batch may end after the deadline
    by = {r.task.kernel: r for r in reps}
    assert by["conv2d"].trials > 2 * by["gemv"].trials, [(r.trials, r.seconds, r.share_s) for r in reps]
    assert by["gemv"].trials >= 4  # the floor: the default and a first batch
    assert all(r.default_cost is not None for r in reps)  # every task measured its default
    assert by["conv2d"].share_s > by["gemv"].share_s
    assert reps.budget_s == 60 and reps.elapsed_s == pytest.approx(elapsed, abs=1)
    # --trials is a cap under a budget; time the conv did not use rolls over to the gemv.
    virtual[0] = 0.0
    reps = tune(small_model(), FakeFarm(1.0, virtual), tmp_path / "c.jsonl", "host",
                TuneOptions(trials=5, batch=4, budget_s=60))
    assert [r.trials for r in reps] == [5, 5] and reps.elapsed_s < 12
    reps = tune(small_model(), FakeFarm(1.0, virtual), tmp_path / "d.jsonl", "host",
                TuneOptions(trials=30, batch=4, budget_s=60))
    assert reps[0].trials == 30 and reps[1].trials == 18  # the gemv's space (18) is covered


def test_budget_cli_on_the_local_device(tmp_path: Path, small_model_path: Path) -> None:
    log = tmp_path / "tune.jsonl"
    t0 = time.monotonic()
    res = cli("tune", str(small_model_path), "--device", "local", "--log", str(log), "--budget", "5s",
              "--batch", "3", "--min-time", "0.01", "--report")
    elapsed = time.monotonic() - t0
    assert_clean(res, 0, "best vs default", "trials", "share", "total (2 tasks)", "budget 5s")
    assert elapsed < 5 + 6, elapsed  # a batch of 3 in flight may finish
    recs = read_log(log)
    for t in _tasks().values():  # every task got at least its default, measured first
        mine = [r for r in recs if r["task"]["kernel"] == t.kernel]
        assert mine and mine[0]["config"]["knobs"] == t.default_knobs
    # Resume with a budget: what the log has counts (no config measured twice).
    assert_clean(cli("tune", str(small_model_path), "--device", "local", "--log", str(log), "--budget", "2s",
                     "--batch", "3", "--min-time", "0.01", "--resume"), 0)
    keys = [(r["task"]["kernel"], r["config"]["index"]) for r in read_log(log)]
    assert len(keys) == len(set(keys)) >= len(recs)


def _warm_log(path: Path, tasks: dict[str, Task]) -> dict[str, int]:
    """Another device's log: per task a few configs, the best one not the default; plus
    records of another target (rpi4) that must be ignored. Returns the best index per task."""
    log, best = TuningLog(path), {}
    for kind, t in tasks.items():
        space = t.space()
        default = space.index(t.default_knobs)
        picks = [i for i in range(len(space)) if i != default][-3:]
        best[kind] = picks[0]
        for n, i in enumerate([default, *picks]):
            c = 1e-6 if i == picks[0] else 5e-6 + n * 1e-6
            log.append(make_record(t.task, i, space.knobs(i), [c], None, "pi-b"))
            log.append(make_record({**t.task, "target": "rpi4"}, i, space.knobs(i), [c / 9], None, "pi-x"))
    return best


def test_warm_start_cli(tmp_path: Path, small_model_path: Path) -> None:
    tasks = _tasks()
    warm = tmp_path / "other-device.jsonl"
    best = _warm_log(warm, tasks)
    log = tmp_path / "tune.jsonl"
    res = cli("tune", str(small_model_path), "--device", "local", "--log", str(log), "--trials", "3",
              "--batch", "3", "--min-time", "0.01", "--warm-start", str(warm), "--report")
    assert_clean(res, 0, "warm start: 8 record(s) of 1 log(s) used", "ignored 8 (8 target rpi4)")
    recs = read_log(log)
    assert len(recs) == 6 and {r["device"] for r in recs} == {"local"}  # nothing copied
    for kind, t in tasks.items():
        first = [r["config"] for r in recs if r["task"]["kernel"] == kind]
        assert first[0]["knobs"] == t.default_knobs  # the default first, then the other's best
        assert first[1]["index"] == best[kind], (kind, first)


def test_warm_start_api_trains_but_does_not_count(tmp_path: Path) -> None:
    tasks = _tasks()
    warm = tmp_path / "w.jsonl"
    best = _warm_log(warm, tasks)
    farm = FakeFarm()
    reps = tune(small_model(), farm, tmp_path / "t.jsonl", "host",
                TuneOptions(trials=4, batch=4, warm_start=(warm,)))
    assert reps.warm is not None and reps.warm.used == 8 and reps.warm.ignored["target rpi4"] == 8
    assert [r.trials for r in reps] == [4, 4] and [r.warm for r in reps] == [4, 4]
    for kind, batch in farm.batches:
        assert best[kind] in batch[:3]
    assert len(read_log(tmp_path / "t.jsonl")) == 8


def test_report_fits_80_columns(tmp_path: Path) -> None:
    from edgec.cli_tune import report_notes, report_table

    reps = tune(small_model(), FakeFarm(), tmp_path / "r.jsonl", "host",
                TuneOptions(trials=6, batch=3, budget_s=60))
    con = Console(width=80, record=True, file=open(Path(tmp_path / "out.txt"), "w"))  # noqa: SIM115
    con.print(report_table(reps))
    for line in report_notes(reps):
        con.print(line)
    text = con.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    lines = text.splitlines()
    header = next(line for line in lines if line.strip().startswith("task"))
    assert header.split() == ["task", "n", "trials", "default", "tuned", "gain", "time", "share"]
    row = next(line for line in lines if line.strip().startswith("conv 3x3/1 8->16 @12x12"))
    assert "6/38" in row and row.rstrip().endswith("%")  # on one line, not wrapped
    assert any(line.strip().startswith("total (2 tasks)") for line in lines)


def test_cli_errors(tmp_path: Path, small_model_path: Path) -> None:
    base = ["tune", str(small_model_path), "--device", "local", "--log", str(tmp_path / "x.jsonl")]
    for bad in ("10x", "0s"):
        res = cli(*base, "--budget", bad)
        assert_clean(res, 2, f"--budget '{bad}'")
        assert len(res.stderr.strip().splitlines()) == 1
    res = cli(*base, "--warm-start", str(tmp_path / "missing.jsonl"))
    assert_clean(res, 2, "--warm-start", "no such tuning log")
    junk = tmp_path / "junk.jsonl"
    junk.write_text("not a log\n")
    assert_clean(cli(*base, "--warm-start", str(junk), "--trials", "1"), 2, "not an edgec tuning log")
    assert not (tmp_path / "x.jsonl").exists() or not read_log(tmp_path / "x.jsonl")

"""A short real tuning run on this machine (the `local` device), through the CLI: every
measurement is one log line, `--resume` adds exactly the missing ones, `--report` prints the
table, and `edgec build --tuning-log` applies the best configs (outputs still exact)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

import edgec
from edgec.tune.log import read_log
from edgec.tune.tasks import extract_tasks
from tests.helpers import assert_close, run_onnxruntime
from tests.remote.conftest import assert_clean, cli
from tests.tune.conftest import small_model


def _counts(log: Path) -> Counter:
    return Counter((r["task"]["kernel"], r["config"]["index"]) for r in read_log(log))


def test_tune_local_resume_and_apply(tmp_path: Path, small_model_path: Path) -> None:
    log = tmp_path / "tune.jsonl"
    common = ["tune", str(small_model_path), "--device", "local", "--log", str(log), "--batch", "3",
              "--min-time", "0.01"]
    assert_clean(cli(*common, "--trials", "4"), 0)
    recs = read_log(log)
    assert len(log.read_text().splitlines()) == len(recs) == 8  # 2 tasks x 4 trials, one line each
    assert Counter(r["task"]["kernel"] for r in recs) == {"gemv": 4, "conv2d": 4}
    assert max(_counts(log).values()) == 1
    tasks = {t.kernel: t for t in extract_tasks(small_model(), "host")}
    for kind, t in tasks.items():  # the default config is measured first, as the baseline
        first = next(r for r in recs if r["task"]["kernel"] == kind)
        assert first["config"]["knobs"] == t.default_knobs
    ok = [r for r in recs if r["result"]["error"] is None]
    assert ok and all(r["result"]["costs_s"][0] > 0 for r in ok)

    # A second run without --resume refuses to mix logs; with --resume it only adds the rest.
    assert_clean(cli(*common, "--trials", "6"), 2, "--resume")
    res = cli(*common, "--trials", "6", "--resume", "--report")
    assert_clean(res, 0, "best vs default")
    counts = _counts(log)
    assert len(log.read_text().splitlines()) == sum(counts.values()) == 12 and max(counts.values()) == 1
    assert [r["config"] for r in read_log(log)[:8]] == [r["config"] for r in recs]  # append-only

    out = tmp_path / "tuned"
    assert_clean(cli("build", str(small_model_path), "--tuning-log", str(log), "-o", str(out)), 0)
    assert json.loads((out / "manifest.json").read_text())["tuning_log"]["tasks"] == 2
    x = np.random.default_rng(0).standard_normal((1, 8, 12, 12)).astype(np.float32)
    got = edgec.load(out).run({"input": x})["output"]
    assert_close(got, run_onnxruntime(small_model(), {"input": x})[0], what="tuned bundle")

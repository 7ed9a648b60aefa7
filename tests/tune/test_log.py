"""Tuning log: JSON-lines round trip, partial last line, resume bookkeeping, and a log applied
by `edgec.build(tuning_log=...)` (the schedule of the best config reaches the kernel)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import edgec
from edgec.compiler import _copy_graph, target_passes
from edgec.importer import import_model
from edgec.optimize import run_pipeline
from edgec.targets import get_profile
from edgec.tune.log import (
    TuningLog,
    best_records,
    load_overrides,
    make_record,
    measured_indices,
    read_log,
)
from edgec.tune.tasks import extract_tasks
from tests.helpers import assert_close, run_onnxruntime
from tests.tune.conftest import small_model

TASK = {"kernel": "gemv", "shapes": [[1, 16], [16, 24]], "dtype": "float32", "target": "host"}


def test_round_trip_and_partial_line(tmp_path: Path) -> None:
    p = tmp_path / "log.jsonl"
    log = TuningLog(p)
    log.append(make_record(TASK, 3, {"nv": 1, "ku": 2, "ka": 1}, [2e-6], None, "local"))
    log.append(make_record(TASK, 4, {"nv": 2, "ku": 2, "ka": 1}, [], "wrong_answer", "local"))
    log.append(make_record(TASK, 5, {"nv": 3, "ku": 1, "ka": 1}, [], "device_lost", "pi"))
    with p.open("a") as f:  # a crash mid-write leaves a partial line
        f.write('{"task": {"kernel": "ge')
    recs = read_log(p)
    assert [r["config"]["index"] for r in recs] == [3, 4, 5]
    assert recs[0]["result"]["costs_s"] == [2e-6] and recs[1]["result"]["error"] == "wrong_answer"
    assert set(recs[0]) == {"task", "config", "result", "device", "version"}
    TuningLog(p).append(make_record(TASK, 6, {"nv": 1, "ku": 1, "ka": 1}, [1e-6], None, "local"))
    assert [r["config"]["index"] for r in read_log(p)] == [3, 4, 5, 6]
    key = json.dumps(TASK, sort_keys=True, separators=(",", ":"))
    # device_lost is not a measurement of the config: a resume measures it again
    assert measured_indices(read_log(p), key) == {3, 4, 6}
    assert best_records(read_log(p))[key]["config"]["index"] == 6
    assert load_overrides(p) == {key: {"nv": 1, "ku": 1, "ka": 1}}


def test_build_applies_best_config(tmp_path: Path) -> None:
    model = small_model()
    tasks = {t.kernel: t for t in extract_tasks(model, "host")}
    p = tmp_path / "log.jsonl"
    log = TuningLog(p)
    gemv, conv = tasks["gemv"], tasks["conv2d"]
    log.append(make_record(gemv.task, 0, {"nv": 1, "ku": 4, "ka": 4}, [3e-6], None, "local"))
    log.append(make_record(gemv.task, 1, {"nv": 2, "ku": 1, "ka": 1}, [1e-6], None, "local"))  # best
    log.append(make_record(conv.task, 7, {"variant": "ocvec", "mp": 3, "nrv": 2}, [5e-6], None, "local"))
    log.append(make_record(conv.task, 8, {"variant": "row", "mr": 1, "nrv": 1}, [], "timeout", "local"))
    overrides = load_overrides(p)
    g = run_pipeline(_copy_graph(run_pipeline(import_model(model))), target_passes(get_profile("host"), overrides))
    scheds = {n.op: n.attrs["schedule"] for n in g.nodes if n.op in ("Gemv", "ConvDirect")}
    assert {k: scheds["Gemv"][k] for k in ("nv", "ku", "ka")} == {"nv": 2, "ku": 1, "ka": 1}
    assert scheds["ConvDirect"]["mp"] == 3 and scheds["ConvDirect"]["nrv"] == 2
    bundle = edgec.build(model, "host", tmp_path / "b", tuning_log=p)
    assert bundle.manifest["tuning_log"]["tasks"] == 2
    x = np.random.default_rng(0).standard_normal((1, 8, 12, 12)).astype(np.float32)
    got = edgec.load(tmp_path / "b").run({"input": x})["output"]
    assert_close(got, run_onnxruntime(model, {"input": x})[0], what="tuned build")

"""Tuning log: JSON-lines round trip, partial last line, resume bookkeeping, and a log applied
by `edgec.build(tuning_log=...)` (the schedule of the best config reaches the kernel)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import edgec
from edgec.importer import import_model
from edgec.kernels.gemv.tuning import gemv_task
from edgec.options import BuildOptions
from edgec.pipeline import run_pipeline, target_passes
from edgec.targets import get_profile
from edgec.tune.keys import task_key
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
    # TASK has no "options": a record of a log written before options joined the task key
    # stands for the default options
    key = task_key(TASK)
    assert json.loads(key)["options"] == BuildOptions().task_fields()
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
    g = run_pipeline(run_pipeline(import_model(model)).copy(), target_passes(get_profile("host"), overrides=overrides))
    scheds = {n.op: n.attrs["schedule"] for n in g.nodes if n.op in ("Gemv", "ConvDirect", "ConvOcvec")}
    assert {k: scheds["Gemv"][k] for k in ("nv", "ku", "ka")} == {"nv": 2, "ku": 1, "ka": 1}
    assert scheds["ConvOcvec"]["mp"] == 3 and scheds["ConvOcvec"]["nrv"] == 2 and "ConvDirect" not in scheds
    bundle = edgec.build(model, "host", tmp_path / "b", tuning_log=p)
    assert bundle.manifest["tuning_log"]["tasks"] == 2
    x = np.random.default_rng(0).standard_normal((1, 8, 12, 12)).astype(np.float32)
    got = edgec.load(tmp_path / "b").run({"input": x})["output"]
    assert_close(got, run_onnxruntime(model, {"input": x})[0], what="tuned build")


def _gemv_schedule(model, device: str, **build_kw) -> dict:  # noqa: ANN001
    """The Gemv schedule `edgec.build` chose, read from its --dump-ir text."""
    lines: list[str] = []
    edgec.build(model, device, dump_ir=lines.append, **build_kw)
    last = lines[-1]
    gemv = [ln for ln in last.splitlines() if "Gemv" in ln]
    assert gemv, last
    return gemv[0]


def test_task_keys_carry_build_options(tmp_path: Path) -> None:
    """A schedule tuned for fp32 weights is not applied to an int8-weight layer, and one tuned
    for int8 weights is; phone builds (Android) honour the log too."""
    model = small_model()
    gemv = next(t for t in extract_tasks(model, "host") if t.kernel == "gemv")
    k, n = gemv.task["shapes"][1]
    int8 = gemv_task(k, n, "host", BuildOptions(weights="int8"))
    assert task_key(int8) != gemv.key
    assert [t.key for t in extract_tasks(model, "host", options=BuildOptions(weights="int8"))
            if t.kernel == "gemv"] == [task_key(int8)]
    knobs = {"nv": 1, "ku": 1, "ka": 1}
    p = tmp_path / "fp32.jsonl"
    TuningLog(p).append(make_record(gemv.task, 0, knobs, [1e-6], None, "local"))
    os_ = tmp_path / "out"
    tuned = "schedule={'nv': 1, 'ku': 1, 'ka': 1"
    assert tuned in _gemv_schedule(model, "host", out_dir=os_ / "a", tuning_log=p)
    assert tuned not in _gemv_schedule(model, "host", out_dir=os_ / "b", tuning_log=p, weights="int8")
    p8 = tmp_path / "int8.jsonl"
    TuningLog(p8).append(make_record(int8, 0, knobs, [1e-6], None, "local"))
    assert tuned in _gemv_schedule(model, "host", out_dir=os_ / "c", tuning_log=p8, weights="int8")
    # Android: the log's task for the phone's profile is applied and the manifest says so
    phone = gemv_task(k, n, "android-arm64")
    pa = tmp_path / "android.jsonl"
    TuningLog(pa).append(make_record(phone, 0, knobs, [1e-6], None, "pixel"))
    assert tuned in _gemv_schedule(model, "android-arm64", out_dir=os_ / "d", tuning_log=pa)
    manifest = json.loads((os_ / "d" / "manifest.json").read_text())
    assert manifest["tuning_log"]["tasks"] == 1
    assert manifest["build_options"]["fast_math"] is True

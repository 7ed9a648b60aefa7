"""`edgec tune --precision fp16`: the conv tasks of an fp16 build are tuned as fp16 kernels
(rpi5 under qemu-aarch64 on this machine): their keys carry the dtype and the option, their
space has fp16's 8 lanes, every measured config gives the right answer, and a build with
`--precision fp16 --tuning-log` applies them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import edgec
from edgec.options import BuildOptions
from edgec.tune.log import read_log
from edgec.tune.measure import LocalRunner, MeasureOptions
from edgec.tune.tasks import extract_tasks, space_for
from edgec.tune.tuner import TuneOptions, tune
from tests.helpers import run_onnxruntime
from tests.tune.conftest import small_model

FP16 = BuildOptions(compute="fp16")


def test_fp16_tasks_tune_and_apply(tmp_path: Path) -> None:
    tasks = [t for t in extract_tasks(small_model(), "rpi5", options=FP16) if t.kernel == "conv2d"]
    assert len(tasks) == 1 and tasks[0].task["dtype"] == "float16"
    assert tasks[0].task["options"]["compute"] == "fp16"
    space = space_for(tasks[0].task)  # 16 output channels = 2 vectors of 8 halves: ocvec up to nrv 2
    assert max(space.knobs(i)["nrv"] for i in range(len(space)) if space.knobs(i)["variant"] == "ocvec") == 2
    log = tmp_path / "fp16.jsonl"
    tune(small_model(), [LocalRunner()], log, "rpi5",
         TuneOptions(trials=3, batch=3, measure=MeasureOptions(runs=2, warmup=0, min_time_s=0.0)),
         tasks=tasks, build_options=FP16)
    recs = read_log(log)
    assert len(recs) == 3 and all(r["result"]["error"] is None for r in recs), [r["result"] for r in recs]
    out = tmp_path / "tuned"
    bundle = edgec.build(small_model(), device="rpi5", out_dir=out, precision="fp16", tuning_log=log)
    assert json.loads((out / "manifest.json").read_text())["tuning_log"]["tasks"] == 1
    x = np.random.default_rng(0).standard_normal((1, 8, 12, 12)).astype(np.float32)
    got = edgec.load(bundle.path).run({"input": x})["output"]
    want = run_onnxruntime(small_model(), {"input": x})[0]
    assert np.abs(got - want).max() <= 1e-2 * max(1.0, float(np.abs(want).max()))

"""`--quantize fp16`: weights stored as float16 (<= 0.55x the fp32 weight bytes), fp32 compute;
results equal the float model run with fp16-rounded (BN-folded) weights, and `edgec compare`
on the bundle reports the final output.
(Error bound: a few times what fp16-rounded weights give in onnxruntime.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

import edgec
from edgec.models import mobilenet_v2
from edgec.quantize.calibrate import run_tensors
from edgec.quantize.fold import fold_affine as fold_batchnorm
from edgec.quantize.fp16 import MIN_ELEMENTS


def test_fp16_weights(tmp_path: Path) -> None:
    model = mobilenet_v2(32)
    onnx.save(model, tmp_path / "m.onnx")
    x = np.random.default_rng(0).standard_normal((3, 1, 3, 32, 32)).astype(np.float32)
    np.savez(tmp_path / "x.npz", input=x[:, 0])
    b32 = edgec.build(model, out_dir=tmp_path / "fp32")
    b16 = edgec.build(model, out_dir=tmp_path / "fp16", quantize="fp16")
    w32, w16 = b32.report.weight_bytes, b16.report.weight_bytes  # type: ignore[attr-defined]
    print(f"weight bytes fp32 {w32}, fp16 {w16}: {w16 / w32:.3f}x")
    assert w16 <= 0.55 * w32
    assert b16.manifest["build_options"]["quantize"] == "fp16"
    # reference: onnxruntime on the BN-folded model with its large weights rounded to fp16
    folded = fold_batchnorm(model)
    for init in folded.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype == np.float32 and a.size >= MIN_ELEMENTS:
            init.CopyFrom(numpy_helper.from_array(a.astype(np.float16).astype(np.float32), init.name))
    feeds = [{"input": xi} for xi in x]
    exact = [v["output"] for v in run_tensors(model, [], feeds)]
    rounded = [v["output"] for v in run_tensors(folded, [], feeds)]
    runner = edgec.load(tmp_path / "fp16")
    for f, e, r in zip(feeds, exact, rounded):
        got = runner.run(f)["output"]
        # packing (Winograd transforms, BN folding order) happens before the rounding, so the
        # error is of the size fp16 rounding gives, not bit-equal to this reference
        err, budget = float(np.abs(got - e).max()), float(np.abs(r - e).max())
        assert 0 < err <= 3 * budget + 1e-5, (err, budget)
    rep = subprocess.run([sys.executable, "-m", "edgec.cli", "compare", str(tmp_path / "m.onnx"),
                          str(tmp_path / "fp16"), "--calibration", str(tmp_path / "x.npz"), "--json"],
                         capture_output=True, text=True, timeout=300)
    assert rep.returncode == 0, rep.stderr
    rows = json.loads(rep.stdout)["tensors"]
    assert [r["tensor"] for r in rows] == ["output"] and rows[0]["cosine"] > 0.9999

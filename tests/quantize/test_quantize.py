"""`edgec quantize` / `edgec compare` (edgec/quantize/): the QDQ format (int8 symmetric
per-channel weights, int32 bias with scale s_in*s_w, BN folded), accuracy of MobileNetV2 64x64
on held-out calibration-like inputs against onnxruntime's own quantize_static, range methods,
and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgec.models import mobilenet_v2
from edgec.quantize.calibrate import collect_ranges, run_tensors
from edgec.quantize.fold import fold_affine as fold_batchnorm

SHAPE = (1, 3, 64, 64)


def _edgec(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgec.cli", *args], capture_output=True, text=True,
                          timeout=300)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def mnv2(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("quant")
    model = mobilenet_v2(SHAPE[2])
    onnx.save(model, d / "mnv2.onnx")
    rng = np.random.default_rng(1)
    calib = rng.standard_normal((8, *SHAPE[1:])).astype(np.float32)
    held_out = rng.standard_normal((4, *SHAPE[1:])).astype(np.float32)
    np.savez(d / "calib.npz", input=calib)
    np.savez(d / "test.npz", input=held_out)
    r = _edgec("quantize", str(d / "mnv2.onnx"), "--calibration", str(d / "calib.npz"),
               "-o", str(d / "q.onnx"), "--json", "--min-cosine", "0")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ops"]["QuantizeLinear"] > 50
    return {"dir": d, "model": model, "q": onnx.load(d / "q.onnx"), "calib": calib, "test": held_out}


def test_qdq_format(mnv2: dict) -> None:
    q = mnv2["q"]
    inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    prod = {o: n for n in q.graph.node for o in n.output}
    folded = {i.name: numpy_helper.to_array(i) for i in fold_batchnorm(mnv2["model"]).graph.initializer}
    assert "BatchNormalization" not in {n.op_type for n in q.graph.node}
    convs = [n for n in q.graph.node if n.op_type == "Conv"]
    assert len(convs) == 52
    for n in convs:
        x_dq, w_dq, b_dq = (prod[i] for i in n.input)
        assert x_dq.op_type == w_dq.op_type == b_dq.op_type == "DequantizeLinear"
        assert prod[x_dq.input[0]].op_type == "QuantizeLinear"
        wq, ws, wz = (inits[i] for i in w_dq.input)
        assert wq.dtype == np.int8 and np.abs(wq).max() <= 127 and not wz.any()
        assert {a.name: a.i for a in w_dq.attribute} == {"axis": 0} and ws.shape == (wq.shape[0],)
        # symmetric per output channel: max |q| is 127 in every non-zero channel, W ~ q * scale
        np.testing.assert_array_equal(np.abs(wq).reshape(len(wq), -1).max(1), 127)
        w = next(v for k, v in folded.items() if v.shape == wq.shape and k in w_dq.input[0])
        np.testing.assert_allclose(wq * ws.reshape(-1, 1, 1, 1), w, atol=float(ws.max()) * 0.5 + 1e-7)
        bq, bs, bz = (inits[i] for i in b_dq.input)
        assert bq.dtype == np.int32 and bz.dtype == np.int32 and not bz.any()
        np.testing.assert_allclose(bs, inits[x_dq.input[1]] * ws, rtol=1e-6)


def test_accuracy_vs_fp32_and_onnxruntime(mnv2: dict) -> None:
    pytest.importorskip("onnxruntime")
    from edgec.models.ort_quant import quantize_qdq

    feeds = [{"input": x[None]} for x in mnv2["test"]]
    ref = [v["output"] for v in run_tensors(mnv2["model"], [], feeds)]
    ours = [v["output"] for v in run_tensors(mnv2["q"], [], feeds)]
    ort_q = quantize_qdq(mnv2["model"], calibration=[x[None] for x in mnv2["calib"]])
    theirs = [v["output"] for v in run_tensors(ort_q, [], feeds)]
    cos_ours = _cos(np.stack(ref), np.stack(ours))
    cos_ort = _cos(np.stack(ref), np.stack(theirs))
    print(f"output cosine vs fp32: edgec quantize {cos_ours:.4f}, onnxruntime quantize_static {cos_ort:.4f}")
    # random-weight MobileNetV2 on N(0,1) inputs: both tools land near 0.97 (see the report)
    assert cos_ours >= 0.95 and cos_ours >= cos_ort - 0.01
    # on the calibration inputs themselves the quantized model is closer still
    calib = [{"input": x[None]} for x in mnv2["calib"][:2]]
    cref = [v["output"] for v in run_tensors(mnv2["model"], [], calib)]
    cq = [v["output"] for v in run_tensors(mnv2["q"], [], calib)]
    assert _cos(np.stack(cref), np.stack(cq)) >= 0.95


def test_compare_report(mnv2: dict) -> None:
    d = mnv2["dir"]
    r = _edgec("compare", str(d / "mnv2.onnx"), str(d / "q.onnx"), "--calibration", str(d / "test.npz"),
               "--json", "--worst", "3")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    rows = {t["tensor"]: t for t in rep["tensors"]}
    assert rep["samples"] == 4 and len(rows) > 60
    assert rows["output"]["is_output"] and rows["output"]["op"] == "Gemm"
    # the report's output cosine is the one computed directly
    feeds = [{"input": x[None]} for x in mnv2["test"]]
    ref = np.stack([v["output"] for v in run_tensors(mnv2["model"], [], feeds)])
    got = np.stack([v["output"] for v in run_tensors(mnv2["q"], [], feeds)])
    assert abs(rows["output"]["cosine"] - _cos(ref, got)) < 1e-6
    assert abs(rows["output"]["max_abs_error"] - float(np.abs(ref - got).max())) < 1e-5
    assert len(rep["worst"]) == 3
    worst_sqnr = max(rows[t]["sqnr_db"] for t in rep["worst"])
    assert all(t["sqnr_db"] >= worst_sqnr for t in rep["tensors"] if t["tensor"] not in rep["worst"])
    assert rows["bn_0"]["sqnr_db"] > rows["output"]["sqnr_db"] > 0  # error grows with depth
    human = _edgec("compare", str(d / "mnv2.onnx"), str(d / "q.onnx"), "--calibration", str(d / "test.npz"))
    assert human.returncode == 0 and "worst" in human.stderr and "SQNR" in human.stderr


def test_range_methods() -> None:
    """Heavy-tailed tensor: percentile and entropy clip the outliers, min-max keeps them."""
    from onnx import TensorProto as T
    from onnx import helper

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", T.FLOAT, [1, 4096])],
                          [helper.make_tensor_value_info("y", T.FLOAT, [1, 4096])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    rng = np.random.default_rng(0)
    feeds = []
    for _ in range(4):
        x = rng.standard_normal((1, 4096)).astype(np.float32)
        x[0, :2] = 100.0
        feeds.append({"x": x})
    mm = collect_ranges(m, ["x", "y"], feeds, "minmax")
    pc = collect_ranges(m, ["x", "y"], feeds, "percentile", 99.9)
    en = collect_ranges(m, ["x", "y"], feeds, "entropy")
    assert mm["y"] == (0.0, 100.0) and mm["x"][1] == 100.0
    assert 2.0 < pc["y"][1] < 10.0 and pc["y"][0] == 0.0
    assert 2.0 < en["y"][1] < 20.0 and en["x"][0] < -2.0


def test_bad_input(mnv2: dict, tmp_path: Path) -> None:
    d = mnv2["dir"]
    model = str(d / "mnv2.onnx")
    empty = tmp_path / "empty"
    empty.mkdir()
    np.savez(tmp_path / "wrong.npz", input=np.zeros((2, 3, 32, 32), np.float32))
    np.savez(tmp_path / "other.npz", image=np.zeros((2, 3, 64, 64), np.float32))
    cases = {
        str(tmp_path / "missing.npz"): "not found",
        str(empty): "no .npz or .npy files",
        str(tmp_path / "wrong.npz"): "expected N samples of 1x3x64x64",
        str(tmp_path / "other.npz"): "not model inputs",
    }
    for calib, msg in cases.items():
        r = _edgec("quantize", model, "--calibration", calib, "-o", str(tmp_path / "x.onnx"))
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    r = _edgec("quantize", str(d / "q.onnx"), "--calibration", str(d / "calib.npz"), "-o", str(tmp_path / "x.onnx"))
    assert r.returncode == 2 and "already quantized" in r.stderr
    r = _edgec("quantize", model, "--calibration", str(d / "calib.npz"), "-o", str(tmp_path / "x.onnx"),
               "--method", "best")
    assert r.returncode == 2 and "--method" in r.stderr
    assert not (tmp_path / "x.onnx").exists()

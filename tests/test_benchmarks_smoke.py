"""Smoke test of the benchmark runner: two smallest cases, very few runs, JSON structure only.

Performance is measured, never asserted: nothing here depends on how fast anything ran.
"""

from __future__ import annotations

import json

from benchmarks import run

STATS_KEYS = {"runs", "inner", "min_us", "median_us", "mean_us", "p90_us", "total_s"}


def test_runner_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    code = run.main(["--cases", "dense256,dense1024", "--min-time", "0", "--min-runs", "2",
                     "--warmup", "1", "--ghz", "3.0", "--flop-per-cycle", "32", "--json-out", str(out)])
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["version"] == run.JSON_VERSION
    assert doc["machine"]["peak_gflops_1core"] == 3.0 * 32
    assert doc["settings"]["min_runs"] == 2
    assert [c["name"] for c in doc["cases"]] == ["dense256", "dense1024"]
    for case, n in zip(doc["cases"], (256, 1024)):
        assert case["check"] == "ok" and case["error"] is None
        assert case["flops"] == 2 * n * n  # the MatMul; the bias Add is not counted
        assert case["inputs"] == {"input": [1, n]}
        assert case["max_scaled_err"] <= run.TOLERANCE
        timings = [case["edgec"]["run"], case["edgec"]["runner_run"],
                   *(case["onnxruntime"][k] for k in ("1", "2", "1_session_run"))]
        for stats in timings:
            assert set(stats) == STATS_KEYS
            assert stats["runs"] >= 2
            assert 0 < stats["min_us"] <= stats["median_us"] <= stats["p90_us"]
        assert case["edgec"]["build_s"] > 0 and "MatMul" in case["edgec"]["ops"]
        assert case["ratio_vs_ort1"] > 0 and case["ratio_paired"] > 0 and case["gflops"] > 0 and case["peak_pct"] > 0


def test_unknown_case_is_a_usage_error(tmp_path):
    assert run.main(["--cases", "nope", "--json-out", str(tmp_path / "x.json")]) == 2
    assert not (tmp_path / "x.json").exists()


def test_failed_build_is_reported_and_exits_1(tmp_path, monkeypatch):
    from onnx import TensorProto, helper

    from benchmarks import cases

    def unsupported():  # an op with no converter: edgec refuses it at import
        node = helper.make_node("NonMaxSuppression", ["input", "scores"], ["output"])
        g = helper.make_graph(
            [node], "nms",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4, 4]),
             helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, 4])],
            [helper.make_tensor_value_info("output", TensorProto.INT64, [None, 3])])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        return m

    case = cases.Case("nms", "unsupported op", unsupported, "micro")
    monkeypatch.setitem(cases.BY_NAME, "nms", case)
    out = tmp_path / "bench.json"
    code = run.main(["--cases", "nms", "--min-time", "0", "--min-runs", "1", "--warmup", "0",
                     "--json-out", str(out)])
    assert code == 1
    (res,) = json.loads(out.read_text())["cases"]
    assert res["check"] == "ERROR" and res["edgec"] is None
    assert "NonMaxSuppression" in res["error"]
    assert res["onnxruntime"]["1"]["runs"] >= 1  # onnxruntime is still timed


def test_case_that_cannot_be_prepared_is_reported_and_the_run_goes_on(tmp_path, monkeypatch):
    """A case whose model cannot be made (a package missing) is an ERROR row; the next case
    still runs and the JSON is written. The default FLOP/cycle comes from the CPU."""
    from benchmarks import cases

    def missing():
        import rapidocr_not_installed  # noqa: F401

    monkeypatch.setitem(cases.BY_NAME, "gone", cases.Case("gone", "needs a package", missing, "micro"))
    out = tmp_path / "bench.json"
    code = run.main(["--cases", "gone,dense256", "--min-time", "0", "--min-runs", "1", "--warmup", "0",
                     "--json-out", str(out)])
    assert code == 1
    doc = json.loads(out.read_text())
    gone, dense = doc["cases"]
    assert gone["check"] == "ERROR" and "cannot prepare the case: ModuleNotFoundError" in gone["error"]
    assert dense["check"] == "ok"
    assert doc["machine"]["fp32_flop_per_cycle"] in (8, 16, 32, 64)


def test_farm_scale_quick_writes_json(tmp_path):
    """The farm scale study (SIMULATED devices, issue 20) end to end on a tiny run: structure only."""
    import pytest

    pytest.importorskip("ray")
    from benchmarks import farm_scale

    out = tmp_path / "farm_scale.json"
    assert farm_scale.main(["--quick", "--json-out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["simulated"] is True and doc["replay"].startswith("replay_")
    assert [r["devices"] for r in doc["runs"]] == [1, 2]
    for r in doc["runs"]:
        assert r["measurements"] == 8  # --quick: one task, 8 trials
        assert r["per_min"] > 0 and r["wall_s"] > 0 and set(r["by_device"]) == {f"sim-{i}" for i in range(r["devices"])}

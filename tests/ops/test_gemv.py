"""Batch-1 dense layers on the knob-driven Gemv kernel vs onnxruntime and onnx.reference:
default schedules, every knob at extreme values (tails in K and N), threads, and aarch64."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.importer import import_model
from edgec.kernels.gemv.tuning import gemv_task
from edgec.pipeline import run_pipeline, target_passes
from edgec.targets import get_profile
from edgec.tune.keys import task_key
from tests.helpers import check_model, make_model, rand

F = T.FLOAT


def _dense(k: int, n: int, act: str | None = "Relu", a_shape: list[int] | None = None, gemm: bool = False):
    w, b = rand(k, n, seed=k + n, low=-0.5, high=0.5), rand(n, seed=3)
    if gemm:  # Gemm with transB: the importer transposes the constant B
        nodes = [helper.make_node("Gemm", ["a", "wt", "b"], ["p"], transB=1)]
        init = {"wt": np.ascontiguousarray(w.T), "b": b}
    else:
        nodes = [helper.make_node("MatMul", ["a", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["p"])]
        init = {"w": w, "b": b}
    if act:
        nodes.append(helper.make_node(act, ["p"], ["y"]))
    else:
        nodes[-1].output[0] = "y"
    shape = a_shape or [1, k]
    return make_model(nodes, [("a", F, shape)], [("y", F, None)], init), {"a": rand(*shape, seed=7)}


def _ops(model, device: str = "host", overrides: dict | None = None) -> list:
    g = run_pipeline(import_model(model))
    return run_pipeline(g.copy(), target_passes(get_profile(device), overrides=overrides)).nodes


@pytest.mark.parametrize("k,n,act,a_shape,gemm", [
    (67, 45, "Relu", None, False),        # tails in K (not a multiple of KU) and N (not of NB)
    (256, 256, None, None, False),        # the benchmark's dense256
    (40, 24, "Sigmoid", [40], False),     # 1-D A, exp-based activation applied lane by lane
    (33, 70, "Tanh", [1, 1, 33], False),  # leading ones
    (50, 19, None, None, True),           # Gemm transB=1
])
def test_gemv_default(k: int, n: int, act: str | None, a_shape: list[int] | None, gemm: bool) -> None:
    model, feeds = _dense(k, n, act, a_shape, gemm)
    assert [x.op for x in _ops(model)] == ["Gemv"]
    check_model(model, feeds)


@pytest.mark.parametrize("knobs", [{"nv": 1, "ku": 1, "ka": 1}, {"nv": 3, "ku": 8, "ka": 4},
                                   {"nv": 8, "ku": 2, "ka": 2}, {"nv": 2, "ku": 3, "ka": 2}])
def test_gemv_knobs(knobs: dict) -> None:
    """A schedule override (what a tuning log applies) takes effect and stays exact."""
    model, feeds = _dense(77, 53)
    ov = {task_key(gemv_task(77, 53, "host")): knobs}
    node = _ops(model, overrides=ov)[0]
    assert {k: node.attrs["schedule"][k] for k in knobs} == knobs
    check_model(model, feeds, schedule_overrides=ov)


def test_gemv_threads() -> None:
    model, feeds = _dense(96, 200)
    check_model(model, feeds, threads=2)


def test_not_gemv() -> None:
    """Batch > 1, or weights that are inputs, stay on the generic MatMul."""
    m2, _ = _dense(16, 16, a_shape=[2, 16])
    assert "Gemv" not in {x.op for x in _ops(m2)}
    nodes = [helper.make_node("MatMul", ["a", "w"], ["y"])]
    m3 = make_model(nodes, [("a", F, [1, 16]), ("w", F, [16, 16])], [("y", F, None)])
    assert "Gemv" not in {x.op for x in _ops(m3)}


@pytest.mark.parametrize("device", ["rpi4"])
def test_gemv_arm(device: str) -> None:
    model, feeds = _dense(70, 37, "LeakyRelu")
    assert [x.op for x in _ops(model, device)] == ["Gemv"]
    check_model(model, feeds, device=device)

"""Error bounds of the libm-free math in generated code, measured over the float range."""

from __future__ import annotations

import math

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from tests.helpers import make_model, run_edgec

N = 200_000


def _run(op: str, x: np.ndarray, device: str = "host") -> np.ndarray:
    m = make_model([helper.make_node(op, ["x"], ["y"])], [("x", T.FLOAT, [x.size])], [("y", T.FLOAT, [x.size])])
    return run_edgec(m, {"x": x}, device)[0]


def _ulp_err(got: np.ndarray, want64: np.ndarray) -> np.ndarray:
    want32 = want64.astype(np.float32)
    return np.abs(got.astype(np.float64) - want64) / np.spacing(np.abs(want32)).astype(np.float64)


@pytest.mark.parametrize("device", ["host", "rpi4"])
def test_exp_relative_error(device: str) -> None:
    x = np.linspace(-87.0, 88.5, N, dtype=np.float32)
    got = _run("Exp", x, device)
    want = np.exp(x.astype(np.float64))
    assert _ulp_err(got, want).max() <= 5.0  # measured 4.5 ulp at |x| > 86 (FMA contraction)
    edge = _run("Exp", np.array([-200, -88, 89, 200, 0], np.float32), device)
    assert edge[0] == 0 and edge[1] < 1e-37 and np.isinf(edge[2]) and np.isinf(edge[3]) and edge[4] == 1


def test_log_relative_error() -> None:
    x = np.concatenate([np.geomspace(1e-30, 1e30, N // 2), np.linspace(0.5, 2.0, N // 2)]).astype(np.float32)
    got = _run("Log", x)
    want = np.log(x.astype(np.float64))
    err = np.abs(got - want) / np.maximum(np.abs(want), 1e-3)
    assert err.max() <= 1e-6
    edge = _run("Log", np.array([0.0, -1.0, np.inf, 1.0], np.float32))
    assert edge[0] == -np.inf and np.isnan(edge[1]) and edge[2] == np.inf and edge[3] == 0


@pytest.mark.parametrize("op,fn,bound", [
    ("Tanh", np.tanh, 1e-6),
    ("Sigmoid", lambda v: 1 / (1 + np.exp(-v)), 1e-6),
    ("Erf", np.vectorize(math.erf), 2e-6),
])
def test_bounded_functions_absolute_error(op: str, fn, bound: float) -> None:  # noqa: ANN001
    x = np.linspace(-12.0, 12.0, N, dtype=np.float32)
    got = _run(op, x)
    want = fn(x.astype(np.float64))
    assert np.abs(got - want).max() <= bound


@pytest.mark.parametrize("op,fn,bound", [
    ("Tanh", np.tanh, 1e-6),
    ("Sigmoid", lambda v: 1 / (1 + np.exp(-v)), 1e-6),
])
@pytest.mark.parametrize("device", ["host", "rpi4"])
def test_vector_forms_in_conv_epilogue(op: str, fn, bound: float, device: str) -> None:  # noqa: ANN001
    # The same functions emitted on whole vectors (a conv epilogue): identity 1x1 conv + op.
    c, hw = 16, 100
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node(op, ["c"], ["y"])]
    m = make_model(nodes, [("x", T.FLOAT, [1, c, hw, hw])], [("y", T.FLOAT, None)],
                   {"w": np.eye(c, dtype=np.float32).reshape(c, c, 1, 1)})
    x = np.linspace(-12.0, 12.0, c * hw * hw, dtype=np.float32).reshape(1, c, hw, hw)
    got = run_edgec(m, {"x": x}, device)[0]
    assert np.abs(got - fn(x.astype(np.float64))).max() <= bound

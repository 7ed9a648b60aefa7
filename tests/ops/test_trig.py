"""Sin and Cos (libm-free, edgec/codegen/trig.py), Mish and Swish, vs numpy in float64 and
onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from tests.helpers import assert_close, check_model, make_model, run_edgec


@pytest.mark.parametrize("op", ["Sin", "Cos"])
def test_accuracy(op: str) -> None:
    model = make_model([helper.make_node(op, ["x"], ["y"])], [("x", T.FLOAT, [4096])], [("y", T.FLOAT, None)], {})
    ref = np.sin if op == "Sin" else np.cos
    for lim, tol in ((100.0, 2e-6), (1e4, 1e-3)):
        x = np.linspace(-lim, lim, 4096, dtype=np.float32)
        got = run_edgec(model, {"x": x})[0]
        err = np.abs(got.astype(np.float64) - ref(x.astype(np.float64))).max()
        assert err <= tol, (op, lim, err)
    x = np.array([np.nan, np.inf, -np.inf, 0.0] + [0.0] * 4092, np.float32)
    got = run_edgec(model, {"x": x})[0]
    assert np.isnan(got[:3]).all()
    assert_close(got[3:4], ref(np.zeros(1, np.float32)))


def test_fused_with_other_elementwise_ops() -> None:
    nodes = [helper.make_node("Sin", ["x"], ["s"]), helper.make_node("Cos", ["x"], ["c"]),
             helper.make_node("Mul", ["s", "c"], ["y"])]
    model = make_model(nodes, [("x", T.FLOAT, [3, 50])], [("y", T.FLOAT, None)], {})
    check_model(model, {"x": np.linspace(-20, 20, 150, dtype=np.float32).reshape(3, 50)})


@pytest.mark.parametrize("op,attrs", [("Mish", {}), ("Swish", {}), ("Swish", {"alpha": 1.702})])
def test_mish_and_swish(op: str, attrs: dict) -> None:
    """Activations composed from the exp/log/tanh/sigmoid of codegen/mathfn.py."""
    model = make_model([helper.make_node(op, ["x"], ["y"], **attrs)], [("x", T.FLOAT, [2, 64])],
                       [("y", T.FLOAT, None)], {}, opset=24 if op == "Swish" else 18)
    x = np.linspace(-30, 30, 128, dtype=np.float32).reshape(2, 64)
    got = run_edgec(model, {"x": x})[0].astype(np.float64)
    x64 = x.astype(np.float64)
    want = x64 * np.tanh(np.log1p(np.exp(x64))) if op == "Mish" else x64 / (1 + np.exp(-attrs.get("alpha", 1.0) * x64))
    assert_close(got, want, 1e-4)

"""Sin and Cos (libm-free, edgec/codegen/trig.py) vs numpy in float64 and onnxruntime."""

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

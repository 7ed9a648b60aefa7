"""Fixtures of tests/tune: the loopback sshd helpers of tests/remote (a real OpenSSH server)
and a small model with one conv task and one GEMV task."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from tests.remote.conftest import edgec_env  # noqa: F401  (fixture re-exported)


def small_model() -> onnx.ModelProto:
    """Conv 3x3 (8 -> 16 on 12x12) + Relu + GlobalAveragePool + Flatten + Gemm (16 -> 24)."""
    rng = np.random.default_rng(0)
    init = [numpy_helper.from_array(rng.standard_normal((16, 8, 3, 3)).astype(np.float32) * 0.2, "w"),
            numpy_helper.from_array(rng.standard_normal(16).astype(np.float32), "b"),
            numpy_helper.from_array(rng.standard_normal((24, 16)).astype(np.float32) * 0.3, "fw"),
            numpy_helper.from_array(rng.standard_normal(24).astype(np.float32), "fb")]
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]), helper.make_node("GlobalAveragePool", ["r"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["output"], transB=1)]
    g = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("input", T.FLOAT, [1, 8, 12, 12])],
                          [helper.make_tensor_value_info("output", T.FLOAT, [1, 24])], init)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture()
def small_model_path(tmp_path):  # noqa: ANN001, ANN201
    p = tmp_path / "small.onnx"
    onnx.save(small_model(), p)
    return p

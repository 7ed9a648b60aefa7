"""3-D MaxPool/AveragePool, compiled as a 2-D pool per depth slice and a pool over depth."""

from __future__ import annotations

import pytest
from onnx import TensorProto as T
from onnx import helper

from tests.helpers import check_model, make_model, rand


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [2, 3, 3]},
    {"kernel_shape": [3, 2, 3], "strides": [2, 1, 2], "pads": [1, 0, 1, 1, 1, 0]},
    {"kernel_shape": [2, 2, 2], "strides": [2, 2, 2], "ceil_mode": 1},
    {"kernel_shape": [3, 3, 3], "pads": [1, 1, 1, 1, 1, 1], "count_include_pad": 1},
])
def test_pool_3d(op: str, attrs: dict) -> None:
    if op == "MaxPool":
        attrs = {k: v for k, v in attrs.items() if k != "count_include_pad"}
    model = make_model([helper.make_node(op, ["x"], ["y"], **attrs)], [("x", T.FLOAT, [1, 3, 5, 6, 7])],
                       [("y", T.FLOAT, None)], {})
    # onnx.reference's 3-D MaxPool indexes past the input with pads: onnxruntime only there
    check_model(model, {"x": rand(1, 3, 5, 6, 7, seed=5)}, reference=op == "AveragePool" or "pads" not in attrs)

"""3-D MaxPool/AveragePool (a 2-D pool per depth slice, then a pool over depth) and LRN (an
AveragePool over channels): pools composed from the 2-D kernel."""

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


@pytest.mark.parametrize("size,shape", [(3, [2, 7, 5, 6]), (5, [1, 6, 3, 3]), (1, [1, 3, 4, 4])])
def test_lrn(size: int, shape: list[int]) -> None:
    """LRN is composed from Mul, an AveragePool over channels, Add, Pow and Div."""
    model = make_model([helper.make_node("LRN", ["x"], ["y"], size=size, alpha=2e-3, beta=0.6, bias=1.5)],
                       [("x", T.FLOAT, shape)], [("y", T.FLOAT, None)], {})
    # onnxruntime (odd sizes only) and ONNX's own LRN node cases agree; onnx.reference's
    # LRN evaluator does not match them (max error ~5e-3 here), so it is left out
    check_model(model, {"x": rand(*shape, seed=6)}, reference=False)

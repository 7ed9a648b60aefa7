"""TopK vs onnxruntime: largest and smallest, any axis, ties in index order, K as attribute
(opset 1) or constant input, float and integer data."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from tests.helpers import check_model, make_model, rand


@pytest.mark.parametrize("axis,k,largest", [(-1, 3, 1), (1, 2, 0), (0, 4, 1), (2, 6, 0), (1, 0, 1)])
def test_topk(axis: int, k: int, largest: int) -> None:
    node = helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=axis, largest=largest)
    model = make_model([node], [("x", T.FLOAT, [4, 5, 6])], [("v", T.FLOAT, None), ("i", T.INT64, None)],
                       {"k": np.array([k], np.int64)})
    x = np.round(rand(4, 5, 6, seed=3) * 2) / 2  # many ties
    check_model(model, {"x": x})


def test_topk_opset1_attribute() -> None:
    node = helper.make_node("TopK", ["x"], ["v", "i"], k=2, axis=1)
    model = make_model([node], [("x", T.FLOAT, [3, 5])], [("v", T.FLOAT, None), ("i", T.INT64, None)], {}, opset=9)
    check_model(model, {"x": rand(3, 5, seed=4)}, reference=False)


def test_topk_int_data_ties() -> None:
    node = helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=1)
    model = make_model([node], [("x", T.INT32, [3, 5])], [("v", T.INT32, None), ("i", T.INT64, None)],
                       {"k": np.array([3], np.int64)}, opset=11)
    x = np.array([[1, 5, 5, 2, -3], [0, 0, 0, 0, 0], [-7, 9, 3, 9, 9]], np.int32)
    check_model(model, {"x": x})

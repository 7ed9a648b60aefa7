"""GatherElements vs onnxruntime and onnx.reference: run-time and constant indices, negative
indices, every axis."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from tests.helpers import check_model, make_model, rand


@pytest.mark.parametrize("axis,ishape", [(0, [2, 4, 5]), (1, [3, 6, 5]), (-1, [3, 4, 7]), (2, [3, 4, 1])])
@pytest.mark.parametrize("const", [False, True])
def test_gather_elements(axis: int, ishape: list[int], const: bool) -> None:
    dshape = [3, 4, 5]
    n = dshape[axis]
    idx = np.random.default_rng(1).integers(-n, n, size=ishape).astype(np.int64)
    node = helper.make_node("GatherElements", ["x", "i"], ["y"], axis=axis)
    inputs = [("x", T.FLOAT, dshape)] + ([] if const else [("i", T.INT64, ishape)])
    model = make_model([node], inputs, [("y", T.FLOAT, None)], {"i": idx} if const else {})
    feeds = {"x": rand(*dshape, seed=2)} | ({} if const else {"i": idx})
    check_model(model, feeds, reference=axis >= 0)  # onnx.reference mishandles a negative axis


def test_gather_elements_int32_data_and_indices() -> None:
    node = helper.make_node("GatherElements", ["x", "i"], ["y"], axis=1)
    model = make_model([node], [("x", T.INT32, [2, 3]), ("i", T.INT32, [2, 2])], [("y", T.INT32, None)], {})
    check_model(model, {"x": np.arange(6, dtype=np.int32).reshape(2, 3), "i": np.array([[2, -1], [0, 1]], np.int32)})

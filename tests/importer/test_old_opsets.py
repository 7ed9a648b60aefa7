"""Opset 1-6 models are upgraded to opset 7 by onnx's version converter before import."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto as T
from onnx import helper

from tests.helpers import assert_close, rand, run_edgec


def test_opset6_broadcast_add_and_relu() -> None:
    """Opset 6 Add broadcasts only with broadcast=1, an attribute gone in opset 7. (onnx's
    converter mishandles the legacy `axis` attribute, so the bias here is trailing.)"""
    nodes = [helper.make_node("Add", ["x", "b"], ["s"], broadcast=1),
             helper.make_node("Relu", ["s"], ["y"])]
    g = helper.make_graph(nodes, "old", [helper.make_tensor_value_info("x", T.FLOAT, [2, 3, 4]),
                                         helper.make_tensor_value_info("b", T.FLOAT, [4])],
                          [helper.make_tensor_value_info("y", T.FLOAT, [2, 3, 4])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 6)], ir_version=3)
    x, b = rand(2, 3, 4, seed=1), rand(4, seed=2)
    got = run_edgec(model, {"x": x, "b": b})[0]
    assert_close(got, np.maximum(x + b, 0))

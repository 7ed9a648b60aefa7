"""A small conv net for the profiling tests: conv 3x3 + relu, depthwise 3x3 + relu, pointwise
conv, global average pool, flatten, Gemm; with the MACs each layer must report."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper

from tests.helpers import make_model

# MACs: out elements x (Cin/group x kernel window), Gemm: rows x cols x K
CONV_MACS = {"conv1": 8 * 16 * 16 * 3 * 3 * 3, "dw": 8 * 16 * 16 * 3 * 3, "pw": 16 * 16 * 16 * 8, "fc": 10 * 16}


def conv_net() -> onnx.ModelProto:
    rng = np.random.default_rng(7)

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.3).astype(np.float32)

    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], name="dw", pads=[1, 1, 1, 1], group=8),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("Conv", ["r2", "w3"], ["c3"], name="pw"),
             helper.make_node("GlobalAveragePool", ["c3"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w4", "b4"], ["y"], name="fc", transB=1)]
    inits = {"w1": w(8, 3, 3, 3), "b1": w(8), "w2": w(8, 1, 3, 3), "w3": w(16, 8, 1, 1), "w4": w(10, 16),
             "b4": w(10)}
    return make_model(nodes, [("x", T.FLOAT, [1, 3, 16, 16])], [("y", T.FLOAT, [1, 10])], inits)

"""The fold-qdq pass on small hand-made QDQ graphs: fused Relu/Clip become the requantization
clamp, an op without an integer kernel stays float between its DQ and Q, and both run like
onnxruntime (which evaluates the QDQ graph as written)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.importer import import_model
from edgec.pipeline import run_pipeline
from tests.helpers import check_model, make_model, rand

OPSET = 19


def _qdq_conv(act: str | None, tail: str | None = None):  # noqa: ANN202
    """Q(x) -> DQ -> Conv(DQ(w int8 per channel), DQ(b int32)) [-> act] -> Q -> DQ [-> tail -> Q -> DQ]."""
    rng = np.random.default_rng(0)
    ws = np.linspace(0.005, 0.01, 6).astype(np.float32)
    xs = np.float32(0.03)
    inits = {"xs": np.array(xs), "xz": np.array(128, np.uint8), "wq": rng.integers(-64, 64, (6, 4, 3, 3)).astype(np.int8),
             "ws": ws, "wz": np.zeros(6, np.int8), "bq": rng.integers(-500, 500, 6).astype(np.int32),
             "bs": (xs * ws).astype(np.float32), "bz": np.zeros(6, np.int32),
             "ys": np.array(0.02, np.float32), "yz": np.array(100, np.uint8), "lo": np.array(-0.3, np.float32),
             "hi": np.array(0.9, np.float32)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0),
             helper.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["bd"], axis=0),
             helper.make_node("Conv", ["xd", "wd", "bd"], ["c"], pads=[1, 1, 1, 1])]
    y = "c"
    if act == "Relu":
        nodes.append(helper.make_node("Relu", ["c"], ["a"]))
        y = "a"
    elif act == "Clip":
        nodes.append(helper.make_node("Clip", ["c", "lo", "hi"], ["a"]))
        y = "a"
    nodes += [helper.make_node("QuantizeLinear", [y, "ys", "yz"], ["yq"]),
              helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["out" if tail is None else "yd"])]
    if tail is not None:
        nodes += [helper.make_node(tail, ["yd"], ["t"]), helper.make_node("QuantizeLinear", ["t", "ys", "yz"], ["tq"]),
                  helper.make_node("DequantizeLinear", ["tq", "ys", "yz"], ["out"])]
    return make_model(nodes, [("x", T.FLOAT, [1, 4, 8, 8])], [("out", T.FLOAT, [1, 6, 8, 8])], inits, opset=OPSET)


@pytest.mark.parametrize("act", [None, "Relu", "Clip"])
def test_activation_becomes_clamp(act: str | None) -> None:
    m = _qdq_conv(act)
    nodes = run_pipeline(import_model(m)).nodes
    [conv] = [n for n in nodes if n.op == "QConv"]
    assert not {"Conv", "Relu", "Clip"} & {n.op for n in nodes}
    if act == "Relu":
        assert conv.attrs["qmin"] == 100
    if act == "Clip":
        assert conv.attrs["qmin"] == 100 + round(-0.3 / 0.02) and conv.attrs["qmax"] == 100 + round(0.9 / 0.02)
    check_model(m, {"x": rand(1, 4, 8, 8, seed=1, low=-4, high=4)}, tol=1e-6, reference=False)


def test_op_without_integer_kernel_stays_float() -> None:
    m = _qdq_conv("Relu", tail="Softmax")
    ops = Counter(n.op for n in run_pipeline(import_model(m)).nodes)
    assert ops["QConv"] == 1 and ops["Softmax"] == 1 and ops["DequantizeLinear"] == 2 and ops["QuantizeLinear"] == 2
    check_model(m, {"x": rand(1, 4, 8, 8, seed=2, low=-4, high=4)}, tol=1e-6, reference=False)


def _qdq_region(tail: str, xdt: int = T.UINT8) -> object:
    """Q(x) -> DQ -> (a unary op, or HardSwish as paddle2onnx writes it: x * Clip(x + 3, 0, 6) / 6)
    -> Q -> DQ: the region becomes one QLut."""
    zx = np.array(128 if xdt == T.UINT8 else 3, np.uint8 if xdt == T.UINT8 else np.int8)
    inits = {"xs": np.array(0.04, np.float32), "xz": zx, "ys": np.array(0.03, np.float32),
             "yz": np.array(20, np.uint8), "three": np.array(3.0, np.float32), "six": np.array(6.0, np.float32),
             "zero": np.array(0.0, np.float32)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"])]
    if tail == "hardswish":
        nodes += [helper.make_node("Add", ["xd", "three"], ["a"]), helper.make_node("Clip", ["a", "zero", "six"], ["c"]),
                  helper.make_node("Mul", ["xd", "c"], ["m"]), helper.make_node("Div", ["m", "six"], ["t"])]
    else:
        nodes.append(helper.make_node(tail, ["xd"], ["t"]))
    nodes += [helper.make_node("QuantizeLinear", ["t", "ys", "yz"], ["tq"]),
              helper.make_node("DequantizeLinear", ["tq", "ys", "yz"], ["out"])]
    return make_model(nodes, [("x", T.FLOAT, [1, 4, 8, 8])], [("out", T.FLOAT, [1, 4, 8, 8])], inits, opset=OPSET)


@pytest.mark.parametrize("tail,xdt", [("hardswish", T.UINT8), ("hardswish", T.INT8), ("Sigmoid", T.UINT8),
                                      ("HardSigmoid", T.INT8), ("Tanh", T.UINT8), ("LeakyRelu", T.UINT8)])
def test_elementwise_region_becomes_a_table(tail: str, xdt: int) -> None:
    m = _qdq_region(tail, xdt)
    ops = Counter(n.op for n in run_pipeline(import_model(m)).nodes)
    assert ops["QLut"] == 1 and not {"Add", "Clip", "Mul", "Div", tail} & set(ops), ops
    # every code of the input range, through edgec's table and onnxruntime's float ops
    x = np.linspace(-7, 7, 256, dtype=np.float32).reshape(1, 4, 8, 8)
    check_model(m, {"x": x}, tol=1e-6, reference=False)


def test_a_region_read_twice_stays_float() -> None:
    """The Add's result is also a graph output: no single value leaves the region."""
    m = _qdq_region("hardswish")
    m.graph.output.append(helper.make_tensor_value_info("a", T.FLOAT, [1, 4, 8, 8]))
    ops = Counter(n.op for n in run_pipeline(import_model(m)).nodes)
    assert "QLut" not in ops and ops["Clip"] == 1

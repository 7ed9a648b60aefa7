"""Elementwise ops vs onnxruntime and onnx.reference, on host and (subset) under qemu."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from tests.helpers import check_model, make_model, rand

F = T.FLOAT
UNARY = ["Relu", "Sigmoid", "Tanh", "Exp", "Neg", "Abs", "Erf", "Floor", "Ceil", "Softsign", "Sign",
         "Round", "Softplus"]


@pytest.mark.parametrize("op", UNARY)
def test_unary(op: str) -> None:
    m = make_model([helper.make_node(op, ["x"], ["y"])], [("x", F, [2, 3, 17])], [("y", F, None)])
    x = rand(2, 3, 17, seed=1, low=-5, high=5)
    check_model(m, {"x": x})


@pytest.mark.parametrize("op", ["Log", "Sqrt", "Reciprocal"])
def test_unary_positive(op: str) -> None:
    m = make_model([helper.make_node(op, ["x"], ["y"])], [("x", F, [64])], [("y", F, None)])
    check_model(m, {"x": rand(64, seed=2, low=0.01, high=50)})


@pytest.mark.parametrize("op,attrs", [("LeakyRelu", {"alpha": 0.2}), ("Elu", {"alpha": 0.7}), ("Selu", {}),
                                      ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}), ("HardSwish", {}),
                                      ("Celu", {"alpha": 1.5}), ("ThresholdedRelu", {"alpha": 0.5})])
def test_param_activation(op: str, attrs: dict) -> None:
    m = make_model([helper.make_node(op, ["x"], ["y"], **attrs)], [("x", F, [3, 40])], [("y", F, None)])
    check_model(m, {"x": rand(3, 40, seed=3, low=-4, high=4)})


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(approximate: str) -> None:
    m = make_model([helper.make_node("Gelu", ["x"], ["y"], approximate=approximate)], [("x", F, [50])],
                   [("y", F, None)], opset=20)
    check_model(m, {"x": rand(50, seed=4, low=-5, high=5)})


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min", "PRelu"])
@pytest.mark.parametrize("shapes", [([2, 3, 4], [2, 3, 4]), ([2, 3, 4], [4]), ([2, 1, 4], [3, 1]), ([1], [5, 2])])
def test_binary_broadcast(op: str, shapes: tuple) -> None:
    sa, sb = shapes
    if op == "PRelu" and tuple(np.broadcast_shapes(sa, sb)) != tuple(sa):
        pytest.skip("PRelu slope must broadcast to X")
    m = make_model([helper.make_node(op, ["a", "b"], ["y"])], [("a", F, sa), ("b", F, sb)], [("y", F, None)])
    b = rand(*sb, seed=6, low=0.5, high=3) if op == "Div" else rand(*sb, seed=6)
    check_model(m, {"a": rand(*sa, seed=5), "b": b})


def test_pow_variants() -> None:
    for e in [2.0, 0.5, 3.0, 1.7]:
        m = make_model([helper.make_node("Pow", ["x", "e"], ["y"])], [("x", F, [30])], [("y", F, None)],
                       {"e": np.array(e, np.float32)})
        check_model(m, {"x": rand(30, seed=7, low=0.1, high=3)})
    m = make_model([helper.make_node("Pow", ["x", "e"], ["y"])], [("x", F, [6]), ("e", F, [6])], [("y", F, None)])
    x = np.array([-2, -2, 0, 0, 3, 1.5], np.float32)
    e = np.array([3, 2, 2, 0, -1, 2.5], np.float32)
    check_model(m, {"x": x, "e": e})


@pytest.mark.parametrize("op", ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"])
def test_compare_where(op: str) -> None:
    nodes = [helper.make_node(op, ["a", "b"], ["c"]), helper.make_node("Where", ["c", "a", "b"], ["y"])]
    m = make_model(nodes, [("a", F, [4, 5]), ("b", F, [5])], [("y", F, None), ("c", T.BOOL, None)])
    a = np.round(rand(4, 5, seed=8))
    check_model(m, {"a": a, "b": np.round(rand(5, seed=9))})


def test_clip_and_cast() -> None:
    nodes = [helper.make_node("Clip", ["x", "lo", "hi"], ["c"]),
             helper.make_node("Cast", ["c"], ["i"], to=T.INT32),
             helper.make_node("Cast", ["i"], ["y"], to=T.FLOAT)]
    m = make_model(nodes, [("x", F, [40])], [("y", F, None), ("i", T.INT32, None)],
                   {"lo": np.array(-3.0, np.float32), "hi": np.array(2.5, np.float32)})
    check_model(m, {"x": rand(40, seed=10, low=-8, high=8)})


def test_integer_ops() -> None:
    nodes = [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Mul", ["s", "a"], ["p"]),
             helper.make_node("Mod", ["p", "b"], ["y"])]
    m = make_model(nodes, [("a", T.INT64, [10]), ("b", T.INT64, [10])], [("y", T.INT64, None)])
    a = np.arange(-5, 5, dtype=np.int64)
    b = np.array([3, -3, 2, 7, -2, 5, 1, 4, -6, 9], np.int64)
    check_model(m, {"a": a, "b": b})


def test_variadic_sum_mean_max() -> None:
    nodes = [helper.make_node("Sum", ["a", "b", "c"], ["s"]), helper.make_node("Mean", ["a", "b", "c"], ["m"]),
             helper.make_node("Max", ["a", "b", "c"], ["x"])]
    m = make_model(nodes, [("a", F, [3, 4]), ("b", F, [4]), ("c", F, [3, 1])],
                   [("s", F, None), ("m", F, None), ("x", F, None)])
    check_model(m, {"a": rand(3, 4, seed=11), "b": rand(4, seed=12), "c": rand(3, 1, seed=13)})


@pytest.mark.parametrize("device", ["rpi4", "rpi3"])
def test_elementwise_arm(device: str) -> None:
    nodes = [helper.make_node("Mul", ["x", "s"], ["a"]), helper.make_node("Sigmoid", ["a"], ["b"]),
             helper.make_node("Tanh", ["b"], ["c"]), helper.make_node("Erf", ["x"], ["d"]),
             helper.make_node("Add", ["c", "d"], ["e"]), helper.make_node("Floor", ["e"], ["f"]),
             helper.make_node("Log", ["b"], ["g"]), helper.make_node("Add", ["f", "g"], ["y"])]
    m = make_model(nodes, [("x", F, [3, 33])], [("y", F, None)], {"s": rand(33, seed=14)})
    check_model(m, {"x": rand(3, 33, seed=15, low=-4, high=4)}, device=device)


@pytest.mark.parametrize("op", ["Relu", "Clip", "Sigmoid", "Tanh"])
def test_nan_propagates_like_onnxruntime(op: str) -> None:
    """Relu/Clip/Tanh of NaN are NaN (min/max keep a NaN operand), not 0 or a clamp bound."""
    x = np.full((1, 3, 5, 7), np.nan, np.float32)
    x[0, 0, 0, :4] = [np.inf, -np.inf, -0.5, 2.0]
    m = make_model([helper.make_node(op, ["x"], ["y"])], [("x", T.FLOAT, [1, 3, 5, 7])],
                   [("y", T.FLOAT, [1, 3, 5, 7])])
    check_model(m, {"x": x}, reference=False)

"""Operands that are data, not shapes, may be computed at run time: Clip's min/max (a log-mel
front end clamps to ReduceMax(x) - 80). And Max/Min/ReduceMax/ReduceMin treat NaN as
onnxruntime does."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from tests.helpers import check_model, make_model, rand


def test_clip_to_a_data_dependent_floor() -> None:
    nodes = [helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
             helper.make_node("Sub", ["m", "c80"], ["lo"]),
             helper.make_node("Clip", ["x", "lo"], ["y"])]
    model = make_model(nodes, [("x", T.FLOAT, [2, 64])], [("y", T.FLOAT, None)],
                       {"c80": np.array(80, np.float32)})
    check_model(model, {"x": rand(2, 64, seed=1, low=-150, high=20)})


@pytest.mark.parametrize("which", ["min", "max", "both"])
def test_clip_bounds_as_graph_inputs(which: str) -> None:
    ins = ["x", "lo" if which != "max" else "", "hi" if which != "min" else ""]
    inputs = [("x", T.FLOAT, [3, 7])] + [(n, T.FLOAT, []) for n in ins[1:] if n]
    model = make_model([helper.make_node("Clip", ins, ["y"])], inputs, [("y", T.FLOAT, None)], {})
    x = rand(3, 7, seed=2)
    x[1, 2] = np.nan  # stays NaN
    feeds = {"x": x, "lo": np.array(-0.5, np.float32), "hi": np.array(0.7, np.float32)}
    check_model(model, {k: v for k, v in feeds.items() if k in ins})


@pytest.mark.parametrize("op", ["Max", "Min"])
def test_max_min_nan_from_either_side(op: str) -> None:
    model = make_model([helper.make_node(op, ["a", "b"], ["y"])], [("a", T.FLOAT, [4]), ("b", T.FLOAT, [4])],
                       [("y", T.FLOAT, None)], {})
    check_model(model, {"a": np.array([np.nan, 1, np.nan, 2], np.float32),
                        "b": np.array([1, np.nan, np.nan, 3], np.float32)})


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin"])
def test_reduce_max_min_with_a_leading_nan(op: str) -> None:
    """A NaN makes the result NaN (onnx.reference; onnxruntime agrees when the NaN comes first in
    its reduction order, and skips later ones: docs/hostile-input.md)."""
    model = make_model([helper.make_node(op, ["a"], ["y"], keepdims=0, axes=[1])], [("a", T.FLOAT, [2, 4])],
                       [("y", T.FLOAT, None)], {})
    check_model(model, {"a": np.array([[np.nan, 1, 5, 2], [3, 4, 5, 6]], np.float32)})


@pytest.mark.parametrize("pads", [[0, 1, 2, 1, 0, 0], [1, -1, 0, 0, 2, -2]])
def test_pad_value_as_a_graph_input(pads: list[int]) -> None:
    model = make_model([helper.make_node("Pad", ["x", "p", "v"], ["y"], mode="constant")],
                       [("x", T.FLOAT, [2, 3, 5]), ("v", T.FLOAT, [])], [("y", T.FLOAT, None)],
                       {"p": np.array(pads, np.int64)})
    # (onnx.reference's Pad cannot crop: negative pads are checked against onnxruntime only)
    check_model(model, {"x": rand(2, 3, 5, seed=4), "v": np.array(7.5, np.float32)},
                reference=min(pads) >= 0)


@pytest.mark.parametrize("xt,yt", [(T.INT32, T.INT32), (T.INT64, T.INT64), (T.INT64, T.FLOAT), (T.INT32, T.INT64)])
def test_integer_pow(xt: int, yt: int) -> None:
    """Integer base: exact for whole exponents, 0/+-1 for negative ones, truncated float pow for
    fractional ones, as onnxruntime's static_cast<T>(std::pow(x, y))."""
    from onnx import helper as h

    model = make_model([h.make_node("Pow", ["x", "y"], ["z"])], [("x", xt, [8]), ("y", yt, [8])],
                       [("z", xt, None)], {})
    xd, yd = h.tensor_dtype_to_np_dtype(xt), h.tensor_dtype_to_np_dtype(yt)
    x = np.array([2, 3, -2, 1, -1, 5, 7, 0], xd)
    y = np.array([10, 3, 5, -3, -3, 0, 2.5 if yd == np.float32 else 2, 4], yd)
    check_model(model, {"x": x, "y": y}, reference=False)


def test_dequantize_one_value_scale_ignores_axis() -> None:
    """A one-value scale is per-tensor whatever `axis` says (quantize_static writes axis=1 on
    the rank-1 bias of a BatchNormalization it did not fold; onnxruntime runs it)."""
    nodes = [helper.make_node("DequantizeLinear", ["q", "s", "z"], ["w"], axis=1),
             helper.make_node("Add", ["x", "w"], ["y"])]
    model = make_model(nodes, [("x", T.FLOAT, [2, 4])], [("y", T.FLOAT, None)],
                       {"q": np.array([3, -7, 100, 0], np.int8), "s": np.array([0.05], np.float32),
                        "z": np.array([2], np.int8)})
    check_model(model, {"x": rand(2, 4, seed=7)}, reference=False)

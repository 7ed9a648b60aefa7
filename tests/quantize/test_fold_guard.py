"""The quantizer's float-graph folding (edgec/quantize/fold.py), its quantization points around
elementwise regions, and the accuracy guard (edgec/quantize/guard.py), on small models built
here and checked in onnxruntime."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.errors import EdgecWarning
from edgec.quantize.fold import fold_affine, fold_constants
from edgec.quantize.qdq_writer import QuantOptions, quantize_model
from tests.helpers import make_model, rand


def _run(m: onnx.ModelProto, feeds: dict) -> np.ndarray:
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_affine_chain_and_constant_bias_fold_into_the_conv() -> None:
    # Conv -> Add(Reshape(b, shape)) -> Mul(scalar) -> Sub(per-channel) -> Div(scalar) -> Relu:
    # one Conv (+ Relu) afterwards, same values
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Reshape", ["b", "shape"], ["br"]),
             helper.make_node("Add", ["c", "br"], ["a"]), helper.make_node("Mul", ["k", "a"], ["m"]),
             helper.make_node("Sub", ["m", "sh"], ["s"]), helper.make_node("Div", ["s", "d"], ["v"]),
             helper.make_node("Relu", ["v"], ["y"])]
    init = {"w": rand(6, 3, 3, 3, seed=1), "b": rand(6, seed=2), "shape": np.array([1, 6, 1, 1], np.int64),
            "k": np.array([1.7], np.float32), "sh": rand(6, 1, 1, seed=3), "d": np.array(0.8, np.float32)}
    m = make_model(nodes, [("x", T.FLOAT, [1, 3, 9, 9])], [("y", T.FLOAT, None)], init)
    folded = fold_affine(fold_constants(m))
    assert [n.op_type for n in folded.graph.node] == ["Conv", "Relu"]
    x = {"x": rand(1, 3, 9, 9, seed=4)}
    np.testing.assert_allclose(_run(folded, x), _run(m, x), rtol=1e-5, atol=1e-5)


def test_no_fold_when_the_conv_output_has_other_readers_or_a_spatial_constant() -> None:
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Add", ["c", "sp"], ["a"]),
             helper.make_node("Mul", ["a", "k"], ["y"]), helper.make_node("Relu", ["a"], ["y2"])]
    init = {"w": rand(4, 3, 1, 1, seed=1), "sp": rand(1, 1, 5, 5, seed=2), "k": np.array(2.0, np.float32)}
    m = make_model(nodes, [("x", T.FLOAT, [1, 3, 5, 5])], [("y", T.FLOAT, None), ("y2", T.FLOAT, None)], init)
    assert [n.op_type for n in fold_affine(m).graph.node] == ["Conv", "Add", "Mul", "Relu"]


def _hardswish_net() -> onnx.ModelProto:
    # conv -> HardSwish written as x * Clip(x + 3, 0, 6) / 6 -> Mul(scalar) -> conv
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c"]),
             helper.make_node("Add", ["c", "three"], ["a"]), helper.make_node("Clip", ["a", "lo", "hi"], ["cl"]),
             helper.make_node("Mul", ["c", "cl"], ["m"]), helper.make_node("Div", ["m", "six"], ["h"]),
             helper.make_node("Mul", ["h", "k"], ["hk"]),
             helper.make_node("Conv", ["hk", "w2", "b2"], ["y"])]
    init = {"w1": rand(8, 3, 1, 1, seed=1), "b1": rand(8, seed=2), "w2": rand(4, 8, 3, 3, seed=3),
            "b2": rand(4, seed=4), "three": np.array(3, np.float32), "lo": np.array(0, np.float32),
            "hi": np.array(6, np.float32), "six": np.array(6, np.float32), "k": np.array(0.5, np.float32)}
    return make_model(nodes, [("x", T.FLOAT, [1, 3, 8, 8])], [("y", T.FLOAT, None)], init)


def test_elementwise_region_has_no_quantization_point_inside() -> None:
    m = _hardswish_net()
    feeds = [{"x": rand(1, 3, 8, 8, seed=s)} for s in range(4)]
    q = quantize_model(m, feeds, QuantOptions(min_cosine=0))
    quantized = {n.input[0] for n in q.graph.node if n.op_type == "QuantizeLinear"}
    assert quantized == {"x", "c", "hk", "y_fp32"}, quantized  # conv inputs and outputs only
    assert _cos(_run(q, feeds[0]), _run(m, feeds[0])) > 0.999


def _channel_outlier_net() -> onnx.ModelProto:
    # a 1x1 conv whose output channels span 0.01 .. 100 (after Relu), a depthwise conv that
    # scales them back, a 1x1 conv that mixes them: per-tensor int8 between the first two loses
    # the small channels (the PP-OCRv5 det failure)
    c = 8
    spread = np.logspace(-2, 2, c).astype(np.float32)
    w1 = (rand(c, 4, 1, 1, seed=1, low=0.5, high=1.0) * spread[:, None, None, None]).astype(np.float32)
    w2 = (rand(c, 1, 3, 3, seed=2, low=0.5, high=1.0) / spread[:, None, None, None]).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"]), helper.make_node("Relu", ["a"], ["r"]),
             helper.make_node("Conv", ["r", "w2"], ["d"], group=c, pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["d", "w3"], ["y"])]
    return make_model(nodes, [("x", T.FLOAT, [1, 4, 8, 8])], [("y", T.FLOAT, None)],
                      {"w1": w1, "w2": w2, "w3": rand(4, c, 1, 1, seed=3)})


def test_accuracy_guard_keeps_sensitive_layers_float() -> None:
    m = _channel_outlier_net()
    feeds = [{"x": rand(1, 4, 8, 8, seed=s, low=0, high=1)} for s in range(6)]
    all_int8 = quantize_model(m, feeds, QuantOptions(min_cosine=0))
    worst = min(_cos(_run(all_int8, f), _run(m, f)) for f in feeds[:4])
    assert worst < 0.99, worst
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        guarded = quantize_model(m, feeds, QuantOptions())
    msgs = [str(w.message) for w in caught if issubclass(w.category, EdgecWarning)]
    assert len(msgs) == 1 and "kept float" in msgs[0], msgs
    assert min(_cos(_run(guarded, f), _run(m, f)) for f in feeds[:4]) >= 0.99
    float_convs = [n for n in guarded.graph.node if n.op_type == "Conv" and not n.input[1].endswith("_Output")]
    assert 1 <= len(float_convs) < 3


@pytest.mark.parametrize("target", [0.0, 0.99])
def test_accurate_models_stay_all_int8(target: float) -> None:
    m = _hardswish_net()
    feeds = [{"x": rand(1, 3, 8, 8, seed=s)} for s in range(4)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", EdgecWarning)
        q = quantize_model(m, feeds, QuantOptions(min_cosine=target))
    assert all(n.input[1].endswith("_DequantizeLinear_Output") for n in q.graph.node if n.op_type == "Conv")

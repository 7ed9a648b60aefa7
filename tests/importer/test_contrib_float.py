"""onnxruntime's com.microsoft float ops (edgec/importer/contrib/activations.py) against
onnxruntime itself: each op built with onnx.helper, compiled by edgec, compared on seeded data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

import edgec
from edgec.errors import ModelError
from tests.helpers import assert_close, rand

ort = pytest.importorskip("onnxruntime")
MS = "com.microsoft"


def _model(node: onnx.NodeProto, inputs: dict[str, list[int]], outputs: dict[str, list[int]],
           inits: dict[str, np.ndarray] | None = None, opset: int = 17) -> onnx.ModelProto:
    g = helper.make_graph([node], "m", [helper.make_tensor_value_info(k, T.FLOAT, v) for k, v in inputs.items()],
                          [helper.make_tensor_value_info(k, T.FLOAT, v) for k, v in outputs.items()],
                          [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(MS, 1)])


def _check(m: onnx.ModelProto, feeds: dict[str, np.ndarray], tmp: Path, tol: float = 1e-5) -> dict:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    want = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)
    b = edgec.build(m, out_dir=tmp / "b")
    got = edgec.load(tmp / "b").run(feeds)
    for o, w in zip(m.graph.output, want):
        assert_close(got[o.name], w, tol, f"{m.graph.node[0].op_type}.{o.name}")
    assert not [op for op in b.manifest["ops"] if "." in op], b.manifest["ops"]
    return got


@pytest.mark.parametrize("op", ["Gelu", "FastGelu", "BiasGelu", "QuickGelu"])
def test_gelu_family(op: str, tmp_path: Path) -> None:
    ins = ["x", "bias"] if op in ("FastGelu", "BiasGelu") else ["x"]
    attrs = {"alpha": 1.5} if op == "QuickGelu" else {}
    node = helper.make_node(op, ins, ["y"], domain=MS, **attrs)
    inits = {"bias": rand(16, seed=2)} if len(ins) == 2 else {}
    _check(_model(node, {"x": [2, 5, 16]}, {"y": [2, 5, 16]}, inits), {"x": rand(2, 5, 16, seed=1, low=-4, high=4)},
           tmp_path)


@pytest.mark.parametrize("act,params", [("Relu", []), ("LeakyRelu", [0.2]), ("Clip", [-0.5, 0.8]),
                                        ("HardSigmoid", [0.3, 0.4]), ("Sigmoid", []), ("", [])])
def test_fused_conv(act: str, params: list[float], tmp_path: Path) -> None:
    attrs = {"activation": act, "activation_params": params} if act else {}
    if not params:
        attrs.pop("activation_params", None)
    node = helper.make_node("FusedConv", ["x", "w", "b"], ["y"], domain=MS, pads=[1, 1, 1, 1], strides=[2, 2], **attrs)
    m = _model(node, {"x": [1, 4, 9, 9]}, {"y": [1, 6, 5, 5]}, {"w": rand(6, 4, 3, 3, seed=3), "b": rand(6, seed=4)})
    _check(m, {"x": rand(1, 4, 9, 9, seed=5)}, tmp_path)


@pytest.mark.parametrize("ta,tb,alpha", [(0, 0, 1.0), (1, 0, 0.5), (0, 1, 2.0), (1, 1, 1.0)])
def test_fused_matmul(ta: int, tb: int, alpha: float, tmp_path: Path) -> None:
    a_shape = [2, 3, 7, 5] if ta else [2, 3, 5, 7]
    b_shape = [6, 7] if tb else [7, 6]
    node = helper.make_node("FusedMatMul", ["a", "b"], ["y"], domain=MS, transA=ta, transB=tb, alpha=alpha)
    m = _model(node, {"a": a_shape, "b": b_shape}, {"y": [2, 3, 5, 6]})
    _check(m, {"a": rand(*a_shape, seed=6), "b": rand(*b_shape, seed=7)}, tmp_path)


def test_fused_matmul_batch_transpose_is_refused(tmp_path: Path) -> None:
    node = helper.make_node("FusedMatMul", ["a", "b"], ["y"], domain=MS, transBatchA=1, name="fm")
    with pytest.raises(ModelError, match="'fm'.*transBatchA"):
        edgec.build(_model(node, {"a": [2, 5, 7], "b": [7, 6]}, {"y": [2, 5, 6]}), out_dir=tmp_path / "b")


@pytest.mark.parametrize("opset", [13, 17])
@pytest.mark.parametrize("op,axis", [("LayerNormalization", -1), ("LayerNormalization", 1),
                                     ("SimplifiedLayerNormalization", -1)])
def test_layer_norms(op: str, axis: int, opset: int, tmp_path: Path) -> None:
    """onnxruntime registers these in the ONNX domain; exporters that put them in com.microsoft
    mean the same op. Checked against numpy."""
    ins = ["x", "g", "b"] if op == "LayerNormalization" else ["x", "g"]
    node = helper.make_node(op, ins, ["y"], domain=MS, axis=axis, epsilon=1e-3)
    shape = [5, 16] if axis == -1 else [2, 5, 16]
    inits = {"g": rand(*shape[-1:] if axis == -1 else shape[1:], seed=8),
             "b": rand(*shape[-1:] if axis == -1 else shape[1:], seed=9)}
    m = _model(node, {"x": [2, 5, 16]}, {"y": [2, 5, 16]}, {k: inits[k] for k in ins[1:]}, opset)
    edgec.build(m, out_dir=tmp_path / "b")
    x = rand(2, 5, 16, seed=10).astype(np.float64)
    axes = (-1,) if axis == -1 else (1, 2)
    if op == "LayerNormalization":
        x = x - x.mean(axes, keepdims=True)
    want = x / np.sqrt((x * x).mean(axes, keepdims=True) + 1e-3) * inits["g"]
    want = want + inits["b"] if op == "LayerNormalization" else want
    got = edgec.load(tmp_path / "b").run({"x": rand(2, 5, 16, seed=10)})["y"]
    assert_close(got, want.astype(np.float32), 1e-5, op)


@pytest.mark.parametrize("op,bias,sum_out", [("SkipLayerNormalization", True, True),
                                             ("SkipLayerNormalization", False, False),
                                             ("SkipSimplifiedLayerNormalization", True, True)])
def test_skip_layer_norms(op: str, bias: bool, sum_out: bool, tmp_path: Path) -> None:
    simple = op.startswith("SkipSimplified")
    ins = ["x", "skip", "g"] + ([] if simple else ["beta"])
    if bias:
        ins.append("bias")
    outs = ["y", "", "", "s"] if sum_out else ["y"]
    node = helper.make_node(op, ins, outs, domain=MS, epsilon=1e-5)
    inits = {"g": rand(16, seed=11), "beta": rand(16, seed=12), "bias": rand(16, seed=13)}
    m = _model(node, {"x": [2, 5, 16], "skip": [2, 5, 16]}, {o: [2, 5, 16] for o in outs if o},
               {k: inits[k] for k in ins[2:]})
    _check(m, {"x": rand(2, 5, 16, seed=14), "skip": rand(2, 5, 16, seed=15)}, tmp_path)

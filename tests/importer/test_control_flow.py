"""If without control flow: a constant condition keeps its branch; a run-time one computes both
branches and selects with Where (static shapes only)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper

import edgec
from edgec.errors import ModelError
from tests.helpers import check_model, rand


def _branch(name: str, op: str, out_shape: list[int]) -> onnx.GraphProto:
    """Reads the outer value `x` (3x4) by name."""
    nodes = [helper.make_node(op, ["x"], [f"{name}_y"])]
    if out_shape != [3, 4]:
        nodes = [helper.make_node("ReduceMean", ["x"], [f"{name}_y"], keepdims=1, axes=[1])]
    return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(f"{name}_y", T.FLOAT, out_shape)])


def _model(cond_const: bool | None, else_shape: list[int] = [3, 4]) -> onnx.ModelProto:  # noqa: B006
    nodes = [helper.make_node("If", ["c"], ["y"], then_branch=_branch("then", "Tanh", [3, 4]),
                              else_branch=_branch("else", "Sigmoid", else_shape))]
    inputs = [helper.make_tensor_value_info("x", T.FLOAT, [3, 4])]
    inits = []
    if cond_const is None:
        inputs.append(helper.make_tensor_value_info("c", T.BOOL, [1]))
    else:
        inits.append(onnx.numpy_helper.from_array(np.array([cond_const]), "c"))
    g = helper.make_graph(nodes, "if", inputs, [helper.make_tensor_value_info("y", T.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("cond", [True, False])
def test_runtime_condition(cond: bool) -> None:
    check_model(_model(None), {"x": rand(3, 4, seed=1), "c": np.array([cond])})


@pytest.mark.parametrize("cond", [True, False])
def test_constant_condition_keeps_one_branch(cond: bool, tmp_path) -> None:  # noqa: ANN001
    check_model(_model(cond), {"x": rand(3, 4, seed=2)})
    ops = edgec.build(_model(cond), out_dir=tmp_path / "b").manifest["ops"]
    assert ("Tanh" if cond else "Sigmoid") in ops and "Where" not in ops, ops


def test_branches_of_different_shapes_are_refused(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ModelError, match="branches give outputs of shapes"):
        edgec.build(_model(None, else_shape=[3, 1]), out_dir=tmp_path / "b")


def _rank_switch(sr_input: bool) -> onnx.ModelProto:
    """silero-vad's pattern: `if x.dim() == 1: x = x.unsqueeze(0)` (a condition on a rank,
    known once shapes are fixed: the branch not taken does not even fit the shapes), then a
    nested If on a sample rate reading a value the outer branch defined."""
    unsq = helper.make_graph(
        [helper.make_node("Unsqueeze", ["x", "ax0"], ["u"])], "unsq", [],
        [helper.make_tensor_value_info("u", T.FLOAT, [1, 4])])
    keep = helper.make_graph([helper.make_node("Identity", ["x"], ["k"])], "keep", [],
                             [helper.make_tensor_value_info("k", T.FLOAT, [4])])
    # sr == 16000: MatMul by a [4, 2] weight; else Reshape to a shape that does not fit [1, 4]
    fast = helper.make_graph([helper.make_node("MatMul", ["x2d", "w"], ["m"])], "fast", [],
                             [helper.make_tensor_value_info("m", T.FLOAT, [1, 2])])
    slow = helper.make_graph([helper.make_node("Reshape", ["x2d", "bad"], ["r"])], "slow", [],
                             [helper.make_tensor_value_info("r", T.FLOAT, [3, 5])])
    inner = helper.make_node("If", ["is16k"], ["y_inner"], then_branch=fast, else_branch=slow)
    outer_then = helper.make_graph(
        [helper.make_node("Equal", ["sr", "k16"], ["is16k"]), inner,
         helper.make_node("Relu", ["y_inner"], ["y_relu"])], "body", [],
        [helper.make_tensor_value_info("y_relu", T.FLOAT, [1, 2])])
    keep2 = helper.make_graph([helper.make_node("Identity", ["x"], ["k2"])], "keep2", [],
                              [helper.make_tensor_value_info("k2", T.FLOAT, [4])])
    nodes = [helper.make_node("Shape", ["x"], ["shp"]), helper.make_node("Size", ["shp"], ["rank"]),
             helper.make_node("Equal", ["rank", "one"], ["is1d"]),
             helper.make_node("If", ["is1d"], ["x2d"], then_branch=unsq, else_branch=keep),
             helper.make_node("Greater", ["rank", "zero"], ["always"]),
             helper.make_node("If", ["always"], ["y"], then_branch=outer_then, else_branch=keep2)]
    inits = [onnx.numpy_helper.from_array(v, k) for k, v in {
        "ax0": np.array([0], np.int64), "one": np.array(1, np.int64), "zero": np.array(0, np.int64),
        "k16": np.array(16000, np.int64), "w": rand(4, 2, seed=4), "bad": np.array([3, 5], np.int64)}.items()]
    inputs = [helper.make_tensor_value_info("x", T.FLOAT, [4]), helper.make_tensor_value_info("sr", T.INT64, [])]
    g = helper.make_graph(nodes, "vad", inputs, [helper.make_tensor_value_info("y", T.FLOAT, [1, 2])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_conditions_that_fold_after_shape_inference_and_bind(tmp_path) -> None:  # noqa: ANN001
    m = _rank_switch(True)
    x = rand(4, seed=5)
    edgec.build(m, out_dir=tmp_path / "b", bind={"sr": [16000]})
    got = edgec.load(tmp_path / "b").run({"x": x})["y"]
    want = np.maximum(x[None] @ onnx.numpy_helper.to_array(m.graph.initializer[4]), 0)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    ops = edgec.build(m, out_dir=tmp_path / "c", bind={"sr": [16000]}).manifest["ops"]
    assert "Where" not in ops, ops  # both Ifs folded: one branch each


def test_unbound_runtime_condition_names_the_input(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ModelError, match=r"depends on 'sr'.*--bind NAME=VALUE"):
        edgec.build(_rank_switch(True), out_dir=tmp_path / "b")

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

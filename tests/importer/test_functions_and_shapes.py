"""Model-local functions, user-given input shapes and hostile names (issue 14): a clean
ModelError for what is malformed, the same results as onnxruntime for what is valid."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
from onnx import helper

from edgec.errors import ModelError
from edgec.importer import import_model
from tests.helpers import run_edgec, run_onnxruntime
from tests.importer.test_validation import RNG, base, expect_error


# ---- model-local functions ---------------------------------------------------------------------
def _with_functions(*funcs: onnx.FunctionProto, call: str = "F") -> onnx.ModelProto:
    m = base()
    m.functions.extend(funcs)
    m.opset_import.append(helper.make_opsetid("local", 1))
    m.graph.node[1].op_type, m.graph.node[1].domain = call, "local"
    return m


def _fn(name: str, nodes: list[onnx.NodeProto]) -> onnx.FunctionProto:
    return helper.make_function("local", name, ["a"], ["o"], nodes,
                                [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)])


def _call(op: str, ins: str = "a", out: str = "o") -> onnx.NodeProto:
    return helper.make_node(op, [ins], [out], domain="local")


def test_local_function_is_inlined_and_matches_onnxruntime() -> None:
    """Relu(x) as LeakyRelu(x) + Relu(x) * 0 through two nested local functions."""
    inner = _fn("G", [helper.make_node("LeakyRelu", ["a"], ["o"], alpha=0.25)])
    outer = _fn("F", [_call("G", "a", "t"), helper.make_node("Relu", ["t"], ["o"])])
    m = _with_functions(outer, inner)
    x = RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)
    got = run_edgec(m, {"x": x})[0]
    np.testing.assert_allclose(got, run_onnxruntime(m, {"x": x})[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("funcs, needle", [
    ([_fn("F", [_call("F")])], "cycle ('F' -> 'F')"),
    ([_fn("F", [_call("G")]), _fn("G", [_call("F")])], "cycle ('F' -> 'G' -> 'F')"),
    ([_fn("F", [_call("Nope")])], "calls 'local.Nope', which the model does not define"),
    ([_fn("F", [helper.make_node("Relu", ["a"], ["o"])])] * 2, "defined twice"),
], ids=["recursive", "mutually_recursive", "undefined", "duplicate"])
def test_bad_local_functions(funcs: list[onnx.FunctionProto], needle: str) -> None:
    expect_error(_with_functions(*funcs), needle)


def test_exponential_function_nesting_is_refused() -> None:
    """F_k calls F_(k-1) twice: 40 levels would inline into 2**40 nodes."""
    funcs = [_fn("F0", [helper.make_node("Relu", ["a"], ["o"])])]
    for k in range(1, 40):
        funcs.append(_fn(f"F{k}", [_call(f"F{k - 1}", "a", "t"), _call(f"F{k - 1}", "t", "o")]))
    expect_error(_with_functions(*funcs, call="F39"), "over 1000000 nodes")


# ---- input shapes from the user ----------------------------------------------------------------
@pytest.mark.parametrize("shapes, needle", [
    ({"x": "a"}, "input_shapes['x'] is of type str"),
    ({"x": [1.5, 3, 8, 8]}, "dim 1.5 is of type float"),
    ({"x": None}, "input_shapes['x'] is of type NoneType"),
    ({1: [1]}, "key 1 is of type int"),
    ({"x": [True, 3, 8, 8]}, "is of type bool"),
    ({"x": [0, 3, 8, 8]}, "dim 0 is out of range"),
    ({"x": [-1, 3, 8, 8]}, "dim -1 is out of range"),
    ({"x": [2**31, 3, 8, 8]}, "dim 2147483648 is out of range"),
    ({"x": [1] * 9}, "rank 9"),
    ([("x", [1, 3, 8, 8])], "must be a mapping"),
    ({"nope": [1]}, "unknown input(s) 'nope'"),
], ids=lambda v: repr(v)[:30])
def test_bad_input_shapes(shapes: object, needle: str) -> None:
    expect_error(base(), needle, input_shapes=shapes)


def test_input_shapes_numpy_ints_and_negative_model_dims() -> None:
    """numpy integers are dims; a -1 in the model's input (paddle2onnx's "dynamic") is a
    dynamic dim the user fixes with input_shapes, and the bundle matches onnxruntime."""
    m = base()
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -1
    expect_error(copy.deepcopy(m), "dynamic input dims in 'x'")
    shapes = {"x": np.array([1, 3, 8, 8], np.int64)}
    graph = import_model(m, input_shapes={"x": [np.int32(1), 3, np.int64(8), 8]})
    assert graph.values["x"].shape == (1, 3, 8, 8)
    x = RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)
    got = run_edgec(m, {"x": x}, input_shapes=shapes)[0]
    fixed = copy.deepcopy(m)
    fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    np.testing.assert_allclose(got, run_onnxruntime(fixed, {"x": x})[0], rtol=1e-5, atol=1e-5)


# ---- names are data ----------------------------------------------------------------------------
def test_hostile_names_cannot_forge_lines_or_flood() -> None:
    m = base()
    m.graph.node[1].output[0] = "evil\nerror: forged line\x1b[31m"
    m.graph.node[2].input[0] = "nope" + "A" * 100_000
    msg = expect_error(m, "reads 'nopeAAAA")
    assert len(msg) < 300 and "A" * 81 not in msg
    m = base()
    m.graph.node[1].op_type, m.graph.node[1].domain = "X\nY", "evil.domain\r"
    m.opset_import.append(helper.make_opsetid("evil.domain\r", 1))
    with pytest.raises(ModelError) as exc:
        import_model(m)
    assert "\n" not in str(exc.value) and "\r" not in str(exc.value)

"""recognize-activations: HardSwish / HardSigmoid written out with Add, Clip, Mul and Div (as
paddle2onnx exports them) and Swish as x * Sigmoid(x) (YOLOv8's SiLU) become the ops, and
`fuse-activation` puts them into the conv."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.importer import import_model
from edgec.pipeline import run_pipeline
from tests.helpers import check_model, make_model, rand


def _conv_then(tail: list, out: str, extra: dict | None = None, opset: int = 13):  # noqa: ANN202
    w = np.random.default_rng(0).standard_normal((8, 4, 3, 3)).astype(np.float32) * 0.5
    inits = {"w": w, "three": np.array(3.0, np.float32), "zero": np.array(0.0, np.float32),
             "six": np.array(6.0, np.float32), "sixth": np.array(1 / 6, np.float32), **(extra or {})}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1] * 4), *tail]
    return make_model(nodes, [("x", T.FLOAT, [1, 4, 10, 10])], [(out, T.FLOAT, None)], inits, opset=opset)


def _hardswish_nodes(divide: str = "Div", swap: bool = False) -> list:
    last = (helper.make_node("Div", ["m", "six"], ["y"]) if divide == "Div"
            else helper.make_node("Mul", ["sixth", "m"], ["y"]))
    return [helper.make_node("Add", ["c", "three"], ["a"]),
            helper.make_node("Clip", ["a", "zero", "six"], ["cl"]),
            helper.make_node("Mul", ["cl", "c"] if swap else ["c", "cl"], ["m"]), last]


@pytest.mark.parametrize("divide,swap", [("Div", False), ("Mul", True)])
def test_written_out_hardswish_fuses_into_the_conv(divide: str, swap: bool) -> None:
    m = _conv_then(_hardswish_nodes(divide, swap), "y")
    g = run_pipeline(import_model(m))
    assert [n.op for n in g.nodes] == ["Conv"] and g.nodes[0].attrs["activation"][0] == "HardSwish"
    check_model(m, {"x": rand(1, 4, 10, 10, seed=1, low=-4, high=4)})


def test_written_out_hardsigmoid_gate() -> None:
    """An SE-style gate: Clip(x + 3, 0, 6) / 6 times another tensor."""
    tail = [helper.make_node("Add", ["three", "c"], ["a"]),
            helper.make_node("Clip", ["a", "zero", "six"], ["cl"]),
            helper.make_node("Div", ["cl", "six"], ["gate"]),
            helper.make_node("Mul", ["gate", "x2"], ["y"])]
    m = _conv_then(tail, "y", {"x2": rand(1, 8, 10, 10, seed=3)})
    g = run_pipeline(import_model(m))
    conv = next(n for n in g.nodes if n.op == "Conv")
    assert conv.attrs["activation"][0] == "HardSigmoid" and "Clip" not in [n.op for n in g.nodes]
    check_model(m, {"x": rand(1, 4, 10, 10, seed=1, low=-4, high=4)})


@pytest.mark.parametrize("case", ["clip_max_5", "add_2", "divide_by_5", "shared_clip"])
def test_near_misses_stay(case: str) -> None:
    nodes = _hardswish_nodes()
    extra: dict = {}
    out = "y"
    if case == "clip_max_5":
        nodes[1] = helper.make_node("Clip", ["a", "zero", "five"], ["cl"])
        extra["five"] = np.array(5.0, np.float32)
    elif case == "add_2":
        nodes[0] = helper.make_node("Add", ["c", "two"], ["a"])
        extra["two"] = np.array(2.0, np.float32)
    elif case == "divide_by_5":
        nodes[3] = helper.make_node("Div", ["m", "five"], ["y"])
        extra["five"] = np.array(5.0, np.float32)
    else:  # the clipped value is read twice: it must stay
        nodes.append(helper.make_node("Add", ["y", "cl"], ["z"]))
        out = "z"
    m = _conv_then(nodes, out, extra)
    g = run_pipeline(import_model(m))
    assert "Clip" in [n.op for n in g.nodes] or any(
        "Clip" in str(n.attrs.get("program", "")) for n in g.nodes)
    check_model(m, {"x": rand(1, 4, 10, 10, seed=1, low=-4, high=4)})


@pytest.mark.parametrize("device", ["host", "rpi4"])
def test_silu_fuses_into_the_conv(device: str) -> None:
    m = _conv_then([helper.make_node("Sigmoid", ["c"], ["s"]), helper.make_node("Mul", ["s", "c"], ["y"])], "y")
    g = run_pipeline(import_model(m))
    assert [n.op for n in g.nodes] == ["Conv"] and g.nodes[0].attrs["activation"] == ("Swish", {"alpha": 1.0})
    check_model(m, {"x": rand(1, 4, 10, 10, seed=1, low=-4, high=4)}, device, reference=device == "host")


def test_sigmoid_read_twice_stays() -> None:
    m = _conv_then([helper.make_node("Sigmoid", ["c"], ["s"]), helper.make_node("Mul", ["s", "c"], ["p"]),
                    helper.make_node("Add", ["p", "s"], ["y"])], "y")
    assert "Swish" not in str([(n.op, n.attrs) for n in run_pipeline(import_model(m)).nodes])

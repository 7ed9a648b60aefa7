"""Chains of float elementwise ops run as one loop and still match onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.importer import import_model
from edgec.pipeline import run_pipeline, target_passes
from edgec.targets import get_profile
from tests.helpers import check_model, make_model, rand


def _ops(model, device: str = "host") -> list[str]:
    g = run_pipeline(run_pipeline(import_model(model)).copy(), target_passes(get_profile(device)))
    return [n.op for n in g.nodes]


def _gelu_swish_model():
    # GELU written out, then Swish, then a per-channel scale/shift with broadcasting constants;
    # `g` is also a graph output, so the chain splits there.
    c = np.float32
    nodes = [helper.make_node("Div", ["x", "sqrt2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["a"]), helper.make_node("Mul", ["x", "a"], ["m"]),
             helper.make_node("Mul", ["m", "half"], ["g"]),
             helper.make_node("Sigmoid", ["g"], ["s"]), helper.make_node("Mul", ["g", "s"], ["sw"]),
             helper.make_node("Mul", ["sw", "scale"], ["ms"]), helper.make_node("Add", ["ms", "shift"], ["y"])]
    init = {"sqrt2": np.array(np.sqrt(2), c), "one": np.array(1, c), "half": np.array(0.5, c),
            "scale": rand(6, 1, 1, seed=1), "shift": rand(6, 1, 1, seed=2)}
    return make_model(nodes, [("x", T.FLOAT, [1, 6, 5, 7])], [("y", T.FLOAT, None), ("g", T.FLOAT, None)], init)


@pytest.mark.parametrize("device", ["host", "rpi4"])
def test_chains_fuse_and_match(device: str) -> None:
    m = _gelu_swish_model()
    ops = _ops(m, device)
    assert ops.count("FusedElementwise") == 2 and len(ops) == 2, ops  # split at the output g
    check_model(m, {"x": rand(1, 6, 5, 7, seed=3, low=-4, high=4)}, device=device)


def test_shared_values_and_broadcast_intermediates_stay_apart() -> None:
    # r feeds two consumers; b is smaller than the chain's output (broadcast): neither fuses in.
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Tanh", ["r"], ["t"]),
             helper.make_node("Exp", ["v"], ["b"]), helper.make_node("Add", ["t", "b"], ["u"]),
             helper.make_node("Mul", ["u", "r"], ["y"])]
    m = make_model(nodes, [("x", T.FLOAT, [2, 3, 4]), ("v", T.FLOAT, [4])], [("y", T.FLOAT, None)])
    ops = _ops(m)
    assert ops == ["Relu", "Exp", "FusedElementwise"], ops  # Tanh, Add, Mul in one loop
    check_model(m, {"x": rand(2, 3, 4, seed=4), "v": rand(4, seed=5)})


@pytest.mark.parametrize("device", ["host", "rpi4"])
def test_int8_island_reads_and_writes_int8_in_one_loop(device: str) -> None:
    # an SE block's x * gate between integer kernels: DQ(x) * DQ(gate) -> Q. The big DQ and the
    # Q join the Mul's loop (the broadcast gate's DQ is smaller: it stays alone); bit-exact.
    s, z = np.array(0.05, np.float32), np.array(128, np.uint8)
    gs, gz = np.array(0.004, np.float32), np.array(0, np.uint8)
    nodes = [helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["x"]),
             helper.make_node("DequantizeLinear", ["gq", "gs", "gz"], ["g"]),
             helper.make_node("Mul", ["x", "g"], ["m"]),
             helper.make_node("QuantizeLinear", ["m", "os", "oz"], ["y"])]
    m = make_model(nodes, [("xq", T.UINT8, [1, 8, 6, 5]), ("gq", T.UINT8, [1, 8, 1, 1])], [("y", T.UINT8, None)],
                   {"s": s, "z": z, "gs": gs, "gz": gz, "os": np.array(0.01, np.float32), "oz": np.array(100, np.uint8)})
    ops = _ops(m, device)
    assert ops == ["DequantizeLinear", "FusedElementwise"], ops
    rng = np.random.default_rng(0)
    feeds = {"xq": rng.integers(0, 256, (1, 8, 6, 5), dtype=np.uint8),
             "gq": rng.integers(0, 256, (1, 8, 1, 1), dtype=np.uint8)}
    check_model(m, feeds, device=device, tol=0, reference=False)  # onnx.reference: no DQ at opset 17

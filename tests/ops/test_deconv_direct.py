"""ConvTranspose with kernel == stride on the register-blocked conv kernel (depth-to-space store):
chosen where it applies, BN and activation folded in, exact against onnxruntime across tails,
kernel widths 1/2/4 and targets."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.importer import import_model
from edgec.pipeline import run_pipeline, target_passes
from edgec.targets import get_profile
from tests.helpers import check_model, make_model, rand


def _deconv_model(c: int, m: int, hw: tuple[int, int], k: tuple[int, int], bn: bool = False,
                  act: str | None = None, pads: int = 0, bias: bool = True):
    w = rand(c, m, *k, seed=1, low=-0.5, high=0.5)
    ins = ["x", "w", "b"] if bias else ["x", "w"]
    nodes = [helper.make_node("ConvTranspose", ins, ["d"], strides=list(k), pads=[pads] * 4)]
    init = {"w": w, "b": rand(m, seed=2)} if bias else {"w": w}
    last = "d"
    if bn:
        init |= {"s": rand(m, seed=3, low=0.5, high=1.5), "t": rand(m, seed=4), "mu": rand(m, seed=5),
                 "var": rand(m, seed=6, low=0.5, high=2.0)}
        nodes.append(helper.make_node("BatchNormalization", ["d", "s", "t", "mu", "var"], ["n"]))
        last = "n"
    if act:
        nodes.append(helper.make_node(act, [last], ["a"]))
        last = "a"
    nodes[-1].output[0] = "y"
    return make_model(nodes, [("x", T.FLOAT, [1, c, *hw])], [("y", T.FLOAT, None)], init)


def _ops(model, device: str = "host") -> set[str]:
    g = run_pipeline(import_model(model))
    return {n.op for n in run_pipeline(g.copy(), target_passes(get_profile(device))).nodes}


def test_dispatch_and_folding() -> None:
    ops = _ops(_deconv_model(8, 6, (5, 7), (2, 2), bn=True, act="Relu"))
    assert ops == {"ConvDirect"}, ops  # BN folded into the weights, Relu in the epilogue
    assert "ConvTranspose" in _ops(_deconv_model(8, 6, (5, 7), (2, 2), pads=1))  # overlapping: generic
    assert "ConvTranspose" in _ops(_deconv_model(8, 6, (5, 7), (3, 3)))  # KW 3: generic


@pytest.mark.parametrize("c,m,hw,k,bn,act,bias", [
    (24, 24, (16, 40), (2, 2), True, "Relu", True),    # the DB head deconv
    (24, 1, (20, 21), (2, 2), False, "Sigmoid", True),  # one output channel, width tail
    (5, 3, (7, 9), (2, 2), False, None, False),        # rows not a multiple of the tile, no bias
    (6, 5, (4, 13), (1, 4), True, None, True),         # KW 4, KH 1
    (7, 3, (6, 10), (3, 1), False, "Relu", True),      # KW 1, KH 3
    (16, 10, (3, 3), (2, 4), False, "HardSwish", True),  # narrow map
])
def test_deconv_direct(c: int, m: int, hw: tuple, k: tuple, bn: bool, act: str | None, bias: bool) -> None:
    model = _deconv_model(c, m, hw, k, bn=bn, act=act, bias=bias)
    assert "ConvTranspose" not in _ops(model)
    check_model(model, {"x": rand(1, c, *hw, seed=7)})


@pytest.mark.parametrize("device", ["rpi4", "rpi3"])
def test_deconv_direct_arm(device: str) -> None:
    model = _deconv_model(12, 5, (6, 11), (2, 2), bn=True, act="Relu")
    assert "ConvTranspose" not in _ops(model, device)
    check_model(model, {"x": np.asarray(rand(1, 12, 6, 11, seed=8))}, device=device)


def test_bn_folds_into_generic_deconv() -> None:
    # Overlapping windows stay on the generic kernel; BN still folds into its weights (groups too).
    w = rand(6, 2, 3, 3, seed=9, low=-0.5, high=0.5)
    nodes = [helper.make_node("ConvTranspose", ["x", "w"], ["d"], strides=[2, 2], group=3),
             helper.make_node("BatchNormalization", ["d", "s", "t", "mu", "var"], ["y"])]
    init = {"w": w, "s": rand(6, seed=10, low=0.5, high=1.5), "t": rand(6, seed=11), "mu": rand(6, seed=12),
            "var": rand(6, seed=13, low=0.5, high=2.0)}
    model = make_model(nodes, [("x", T.FLOAT, [1, 6, 5, 5])], [("y", T.FLOAT, None)], init)
    assert _ops(model) == {"ConvTranspose"}
    # onnx.reference mis-assembles grouped ConvTranspose outputs (onnx 1.23): onnxruntime only.
    check_model(model, {"x": rand(1, 6, 5, 5, seed=14)}, reference=False)

"""Winograd F(2,3) / F(4,3) convolution: chosen for 3x3 stride-1 convs with enough channels,
exact (to the usual tolerance) against onnxruntime and onnx.reference across tile tails,
padding, fused activation and residual, threads and targets."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.importer import import_model
from edgec.kernels.winograd.pack import choose_tile, transform_weights, winograd_conv_reference
from edgec.options import BuildOptions
from edgec.pipeline import run_pipeline, target_passes
from edgec.targets import get_profile
from tests.helpers import AVX2, check_model, make_model, rand, run_edgec, with_epilogue


def _model(c: int, m: int, hw: tuple[int, int], pads: list[int], act: str | None = None,
           residual: bool = False):
    nodes = with_epilogue([helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=pads)], "x" if residual else None, act)
    return make_model(nodes, [("x", T.FLOAT, [1, c, *hw])], [("y", T.FLOAT, None)],
                      {"w": rand(m, c, 3, 3, seed=1, low=-0.3, high=0.3), "b": rand(m, seed=2)})


def _nodes(model, device: str = AVX2, threads: int = 1):
    g = run_pipeline(import_model(model))
    return run_pipeline(g.copy(), target_passes(get_profile(device), BuildOptions(threads=threads))).nodes


@pytest.mark.parametrize("r", [2, 4])
def test_transform_matrices(r: int) -> None:
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 16, 11, 13)), rng.standard_normal((5, 16, 3, 3))
    direct = np.zeros((1, 5, 9, 11))
    for i in range(9):
        for j in range(11):
            direct[0, :, i, j] = np.einsum("mcij,cij->m", w, x[0, :, i:i + 3, j:j + 3])
    np.testing.assert_allclose(winograd_conv_reference(x, w, r), direct, atol=1e-10)
    assert transform_weights(w, r).shape == ((r + 2) ** 2, 5, 16)


def test_dispatch() -> None:
    ops = [n.op for n in _nodes(_model(16, 16, (12, 12), [1] * 4))]
    assert "ConvWinograd" in ops
    assert "ConvWinograd" not in [n.op for n in _nodes(_model(8, 16, (12, 12), [1] * 4))]  # few channels
    assert choose_tile(56, 56) == 4 and choose_tile(7, 7) == 2 and choose_tile(28, 28) == 2
    # ResNet-18's 7x7x512 conv: weights too big for so few tiles, stays direct
    assert "ConvWinograd" not in [n.op for n in _nodes(_model(512, 512, (7, 7), [1] * 4))]


@pytest.mark.parametrize("c,m,hw,pads,act,r", [
    (16, 16, (12, 40), [1, 1, 1, 1], None, 4),          # F(4,3), whole tiles
    (24, 17, (30, 34), [1, 1, 1, 1], "Relu", 4),        # F(4,3), partial tile row and column, oc tail
    (16, 20, (14, 14), [1, 1, 1, 1], "Relu", 2),        # F(2,3)
    (24, 17, (23, 37), [1, 1, 1, 1], "Relu", 4),        # odd sizes: partial tile row and column
    (17, 19, (13, 15), [1, 1, 1, 1], "Relu", 2),        # F(2,3) partial tile row and column
    (16, 16, (9, 70), [0, 0, 0, 0], None, 4),           # no padding, partial tile row
    (32, 24, (20, 20), [1, 2, 0, 1], "HardSwish", 2),   # asymmetric pads
    (16, 40, (5, 6), [1, 1, 1, 1], "Sigmoid", 2),       # tiny map
    (16, 16, (8, 120), [1, 1, 1, 1], "Relu", 4),        # F(4,3): a full group of 24 tiles + a tail
    (16, 16, (12, 200), [1, 1, 1, 1], None, 4),         # left border group, middle groups, right border group
    (16, 16, (12, 128), [0, 1, 1, 0], "Relu", 4),       # whole groups only: the last one still checked
    (16, 18, (14, 36), [2, 2, 2, 2], None, 4),          # pads > 1: a Pad node, then the kernel
])
def test_winograd_conv(c: int, m: int, hw: tuple, pads: list, act: str | None, r: int) -> None:
    model = _model(c, m, hw, pads, act)
    nodes = _nodes(model)
    wino = [n for n in nodes if n.op == "ConvWinograd"]
    assert len(wino) == 1 and wino[0].attrs["tile"] == r
    assert ("Pad" in [n.op for n in nodes]) == (max(pads) > 1)  # the kernel pads by up to 1 itself
    check_model(model, {"x": rand(1, c, *hw, seed=3)}, device=AVX2)


@pytest.mark.parametrize("hw", [(16, 16), (7, 9)])
def test_winograd_residual(hw: tuple) -> None:
    model = _model(16, 16, hw, [1] * 4, "Relu", residual=True)
    ops = [n.op for n in _nodes(model)]
    assert "ConvWinograd" in ops and "Add" not in ops and "Relu" not in ops, ops
    check_model(model, {"x": rand(1, 16, *hw, seed=4)})


def test_winograd_threads() -> None:
    # Tasks split tile rows; results must be bitwise equal to the 1-thread build.
    model = _model(16, 24, (30, 17), [1] * 4, "Relu")
    feeds = {"x": rand(1, 16, 30, 17, seed=5)}
    two = check_model(model, feeds, threads=2)
    np.testing.assert_array_equal(two[0], run_edgec(model, feeds)[0])


@pytest.mark.parametrize("device", ["rpi4", "rpi3"])
def test_winograd_arm(device: str) -> None:
    model = _model(16, 20, (13, 18), [1] * 4, "Relu")
    assert "ConvWinograd" in [n.op for n in _nodes(model, device)]
    check_model(model, {"x": rand(1, 16, 13, 18, seed=6)}, device=device)

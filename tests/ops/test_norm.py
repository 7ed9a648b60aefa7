"""InstanceNormalization, LayerNormalization, GroupNormalization vs onnxruntime and onnx.reference."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.errors import ModelError
from edgec.importer import import_model
from tests.helpers import check_model, make_model, rand

F = T.FLOAT


@pytest.mark.parametrize("shape,eps", [([2, 3, 4, 5], 1e-5), ([1, 4, 37], 1e-3), ([2, 2, 3, 3, 2], 0.1),
                                       ([3, 5, 1, 1], 1e-5)])
def test_instance_norm(shape: list[int], eps: float) -> None:
    c = shape[1]
    node = helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=eps)
    m = make_model([node], [("x", F, shape)], [("y", F, None)], {"s": rand(c, seed=1), "b": rand(c, seed=2)})
    check_model(m, {"x": rand(*shape, seed=3)})


def test_instance_norm_runtime_affine_large_mean() -> None:
    """Scale/bias at run time; a mean far from zero (two-pass variance stays accurate)."""
    node = helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"])
    m = make_model([node], [("x", F, [2, 3, 300]), ("s", F, [3]), ("b", F, [3])], [("y", F, None)])
    x = 1000.0 + rand(2, 3, 300, seed=4, low=-0.5, high=0.5)
    feeds = {"x": x, "s": rand(3, seed=5), "b": rand(3, seed=6)}
    # onnxruntime itself is off by ~7e-4 here (float32 statistics), so it gets a looser bound;
    # edgec is held to 1e-4 against float64 statistics.
    got = check_model(m, feeds, tol=1e-3)[0]
    x64 = x.astype(np.float64)
    mean = x64.mean(-1, keepdims=True)
    var = ((x64 - mean) ** 2).mean(-1, keepdims=True)
    want = (x64 - mean) / np.sqrt(var + 1e-5) * feeds["s"][:, None] + feeds["b"][:, None]
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("axis", [-1, -2, 1, 0])
@pytest.mark.parametrize("affine", ["scale", "scale+bias"])
def test_layer_norm(axis: int, affine: str) -> None:
    shape = [2, 3, 4, 5]
    norm = shape[axis:]
    ins = ["x", "s"] + (["b"] if "bias" in affine else [])
    inits = {"s": rand(*norm, seed=7), "b": rand(*norm, seed=8)}
    m = make_model([helper.make_node("LayerNormalization", ins, ["y"], axis=axis, epsilon=1e-4)], [("x", F, shape)],
                   [("y", F, None)], {k: v for k, v in inits.items() if k in ins})
    check_model(m, {"x": rand(*shape, seed=9)})


def test_layer_norm_broadcast_affine_and_stats() -> None:
    """Scale/bias that broadcast over the normalized dims, at run time, and the Mean/InvStdDev
    outputs (also with Mean skipped)."""
    nodes = [helper.make_node("LayerNormalization", ["x", "s", "b"], ["y", "mu", "isd"], axis=1),
             helper.make_node("LayerNormalization", ["x", "s2"], ["z", "", "isd2"], axis=2)]
    m = make_model(nodes, [("x", F, [2, 3, 4, 6]), ("s", F, [4, 1]), ("b", F, [6])],
                   [("y", F, None), ("mu", F, None), ("isd", F, None), ("z", F, None), ("isd2", F, None)],
                   {"s2": rand(6, seed=10)})
    check_model(m, {"x": 50 + rand(2, 3, 4, 6, seed=11), "s": rand(4, 1, seed=12), "b": rand(6, seed=13)})


def test_layer_norm_long_rows() -> None:
    m = make_model([helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"])], [("x", F, [3, 768])],
                   [("y", F, None)], {"s": rand(768, seed=14), "b": rand(768, seed=15)})
    check_model(m, {"x": rand(3, 768, seed=16, low=-10, high=10)})


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_group_norm(groups: int) -> None:
    node = helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=groups, epsilon=1e-4)
    m = make_model([node], [("x", F, [2, 4, 3, 5])], [("y", F, [2, 4, 3, 5])],
                   {"s": rand(4, seed=17), "b": rand(4, seed=18)}, opset=21)
    check_model(m, {"x": rand(2, 4, 3, 5, seed=19)})


def test_layer_norm_rejects_stash_type() -> None:
    node = helper.make_node("LayerNormalization", ["x", "s"], ["y"], stash_type=T.DOUBLE)
    m = make_model([node], [("x", F, [2, 3])], [("y", F, [2, 3])], {"s": rand(3, seed=20)})
    with pytest.raises(ModelError, match="stash_type"):
        import_model(m)


def test_group_norm_rejects_bad_groups() -> None:
    node = helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=3)
    m = make_model([node], [("x", F, [1, 4, 5])], [("y", F, [1, 4, 5])],
                   {"s": rand(4, seed=21), "b": rand(4, seed=22)}, opset=21)
    with pytest.raises(ModelError, match="groups"):
        import_model(m)


@pytest.mark.parametrize("device", ["rpi4", "rpi3"])
def test_norm_arm(device: str) -> None:
    nodes = [helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y0"]),
             helper.make_node("LayerNormalization", ["x", "ls", "lb"], ["y1"], axis=2),
             helper.make_node("GroupNormalization", ["x", "s", "b"], ["y2"], num_groups=2)]
    m = make_model(nodes, [("x", F, [2, 4, 3, 7])], [("y0", F, None), ("y1", F, None), ("y2", F, [2, 4, 3, 7])],
                   {"s": rand(4, seed=23), "b": rand(4, seed=24), "ls": rand(3, 7, seed=25), "lb": rand(3, 7, seed=26)},
                   opset=21)
    check_model(m, {"x": rand(2, 4, 3, 7, seed=27, low=-3, high=5)}, device=device)

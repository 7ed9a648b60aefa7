"""Conv rewrites among the generic passes: fold-pad-into-conv (a zero Pad on H/W in front of a
Conv becomes the Conv's own padding, as TF and TFLite exports spell asymmetric SAME padding;
other Pads stay) and conv-as-dense (a Conv whose window is its whole input is a MatMul)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.importer import import_model
from edgec.pipeline import run_pipeline
from tests.helpers import check_model, make_model, rand


def _model(pads: list[int], value: float = 0.0, mode: str = "constant", pads_conv: list[int] | None = None):
    w = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    x_shape = [1, 3, 9, 10]
    nodes = [helper.make_node("Pad", ["x", "p", "v"], ["xp"], mode=mode),
             helper.make_node("Conv", ["xp", "w"], ["y"], strides=[2, 2], pads=pads_conv or [0, 0, 0, 0])]
    inits = {"w": w, "p": np.array(pads, np.int64), "v": np.array(value, np.float32)}
    return make_model(nodes, [("x", T.FLOAT, x_shape)], [("y", T.FLOAT, None)], inits), x_shape


@pytest.mark.parametrize("pads,conv_pads", [([0, 0, 0, 1, 0, 0, 1, 2], None), ([0, 0, 1, 0, 0, 0, 2, 1], [1, 1, 0, 0])])
def test_zero_pad_folds_into_conv(pads: list[int], conv_pads: list[int] | None) -> None:
    m, xs = _model(pads, pads_conv=conv_pads)
    assert [n.op for n in run_pipeline(import_model(m)).nodes] == ["Conv"]
    check_model(m, {"x": rand(*xs, seed=2)})


@pytest.mark.parametrize("kw", [dict(value=1.5), dict(mode="reflect")])
def test_other_pads_stay(kw: dict) -> None:
    pads = kw.pop("pads", [0, 0, 1, 1, 0, 0, 1, 1])
    m, xs = _model(pads, **kw)
    assert "Pad" in [n.op for n in run_pipeline(import_model(m)).nodes]


@pytest.mark.parametrize("batch,bias,act", [(1, True, "Relu"), (2, False, None)])
def test_whole_window_conv_is_dense(batch: int, bias: bool, act: str | None) -> None:
    rng = np.random.default_rng(1)
    w = rng.standard_normal((50, 8, 3, 3)).astype(np.float32)
    inits = {"w": w, **({"b": rng.standard_normal(50).astype(np.float32)} if bias else {})}
    nodes = [helper.make_node("Conv", ["x", "w", *(["b"] if bias else [])], ["c" if act else "y"], strides=[3, 3])]
    if act:
        nodes.append(helper.make_node(act, ["c"], ["y"]))
    m = make_model(nodes, [("x", T.FLOAT, [batch, 8, 3, 3])], [("y", T.FLOAT, None)], inits)
    ops = [n.op for n in run_pipeline(import_model(m)).nodes]
    assert "Conv" not in ops and "MatMul" in ops, ops
    check_model(m, {"x": rand(batch, 8, 3, 3, seed=3)})
    check_model(m, {"x": rand(batch, 8, 3, 3, seed=3)}, device="rpi4", reference=False)

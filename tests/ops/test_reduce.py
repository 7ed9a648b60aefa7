"""Reductions, ArgMax/ArgMin and Softmax/LogSoftmax vs onnxruntime and onnx.reference."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.errors import ModelError
from edgec.importer import import_model
from tests.helpers import check_model, make_model, rand

F = T.FLOAT
REDUCE_OPS = ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
              "ReduceSumSquare", "ReduceLogSumExp", "ReduceLogSum"]
SHAPE = [2, 3, 4, 5]
# (axes or None for "all", keepdims): covers reducing the innermost dim (register accumulator),
# keeping it (output as accumulator), non-adjacent axes and negative axes.
AXES = [(None, 1), (None, 0), ((1,), 1), ((-1,), 0), ((0, 2), 1), ((0, 2), 0), ((1, 2), 0),
        ((2, 3), 1), ((0, 3), 0), ((-3, 0), 1)]


def _axes_from_input(op: str, opset: int) -> bool:
    return opset >= (13 if op == "ReduceSum" else 18)


def _reduce_model(op: str, opset: int, shape: list[int], dtype: int = F, noop: bool = False):
    nodes, inits, outputs = [], {}, []
    for k, (axes, keep) in enumerate(AXES):
        attrs = {"keepdims": keep}
        ins = ["x"]
        if axes is not None and _axes_from_input(op, opset):
            inits[f"ax{k}"] = np.array(axes, np.int64)
            ins.append(f"ax{k}")
        elif axes is not None:
            attrs["axes"] = list(axes)
        nodes.append(helper.make_node(op, ins, [f"y{k}"], **attrs))
        outputs.append((f"y{k}", dtype, None))
    if noop:  # empty axes with noop_with_empty_axes: the op is applied to each element
        nodes.append(helper.make_node(op, ["x"], ["n0"], noop_with_empty_axes=1))
        inits["empty"] = np.zeros(0, np.int64)
        nodes.append(helper.make_node(op, ["x", "empty"], ["n1"], noop_with_empty_axes=1))
        nodes.append(helper.make_node(op, ["x", "empty"], ["n2"], noop_with_empty_axes=0, keepdims=0))
        outputs += [("n0", dtype, None), ("n1", dtype, None), ("n2", dtype, None)]
    return make_model(nodes, [("x", dtype, shape)], outputs, inits, opset=opset)


def _data(op: str, shape: list[int], seed: int) -> np.ndarray:
    if op == "ReduceLogSum":
        return rand(*shape, seed=seed, low=0.1, high=3)
    if op == "ReduceProd":
        return rand(*shape, seed=seed, low=0.7, high=1.4)
    return rand(*shape, seed=seed, low=-3, high=3)


@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize("op", REDUCE_OPS)
def test_reduce(op: str, opset: int) -> None:
    m = _reduce_model(op, opset, SHAPE, noop=_axes_from_input(op, opset))
    check_model(m, {"x": _data(op, SHAPE, seed=1)})


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceSumSquare"])
@pytest.mark.parametrize("dtype", [T.INT32, T.INT64])
def test_reduce_int(op: str, dtype: int) -> None:
    m = _reduce_model(op, 18, [2, 3, 2, 3], dtype)
    x = np.random.default_rng(2).integers(-4, 5, (2, 3, 2, 3)).astype(helper.tensor_dtype_to_np_dtype(dtype))
    # onnx.reference's ReduceSumSquare widens int32 to int64 (np.sum default): onnxruntime only.
    check_model(m, {"x": x}, reference=not (op == "ReduceSumSquare" and dtype == T.INT32))


def test_reduce_bool_and_empty() -> None:
    """Bool ReduceMax/ReduceMin (opset 20), and reductions over a zero-sized axis (identity)."""
    B = T.BOOL
    nodes = [helper.make_node("ReduceMax", ["b", "a1"], ["bmax"]), helper.make_node("ReduceMin", ["b", "a0"], ["bmin"]),
             helper.make_node("ReduceMin", ["b"], ["ball"], keepdims=0)]
    outs = [("bmax", B, None), ("bmin", B, None), ("ball", B, None)]
    for op in ("ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceLogSumExp", "ReduceSumSquare"):
        nodes.append(helper.make_node(op, ["e", "a1"], [op]))
        outs.append((op, F, None))
    m = make_model(nodes, [("b", B, [4, 3]), ("e", F, [2, 0, 4])], outs,
                   {"a0": np.array([0], np.int64), "a1": np.array([1], np.int64)}, opset=20)
    b = np.random.default_rng(12).random((4, 3)) > 0.3
    check_model(m, {"b": b, "e": np.zeros((2, 0, 4), np.float32)})


def test_reduce_long_rows() -> None:
    """Long contiguous rows (vector loops plus remainders), size-1 dims, and a large mean."""
    nodes = [helper.make_node("ReduceMean", ["x"], ["a"], axes=[2]),
             helper.make_node("ReduceSum", ["x"], ["b"], axes=[0, 1], keepdims=0),
             helper.make_node("ReduceLogSumExp", ["x"], ["c"], axes=[1]),
             helper.make_node("ReduceMax", ["x"], ["d"], axes=[1]),
             helper.make_node("ReduceL2", ["x"], ["e"], axes=[3])]
    m = make_model(nodes, [("x", F, [3, 1, 203, 1])], [(n, F, None) for n in "abcde"], opset=11)
    check_model(m, {"x": rand(3, 1, 203, 1, seed=3, low=5, high=9)})


def test_float64() -> None:
    D = T.DOUBLE
    nodes = [helper.make_node("ReduceMean", ["x"], ["a"], axes=[1]),
             helper.make_node("ReduceLogSumExp", ["x"], ["b"], axes=[0, 2], keepdims=0),
             helper.make_node("Softmax", ["x"], ["c"], axis=1),
             helper.make_node("LogSoftmax", ["x"], ["d"]),
             helper.make_node("ArgMin", ["x"], ["e"], axis=2)]
    m = make_model(nodes, [("x", D, [3, 4, 5])], [(n, D, None) for n in "abcd"] + [("e", T.INT64, None)], opset=13)
    check_model(m, {"x": rand(3, 4, 5, seed=11, dtype=np.float64)})


def test_reduce_non_constant_axes() -> None:
    m = make_model([helper.make_node("ReduceSum", ["x", "axes"], ["y"])], [("x", F, [2, 3]), ("axes", T.INT64, [1])],
                   [("y", F, [2, 3])], opset=13)
    with pytest.raises(ModelError, match="axes"):
        import_model(m)


def test_reduce_rejects_int_mean() -> None:
    m = make_model([helper.make_node("ReduceMean", ["x"], ["y"], axes=[0])], [("x", T.INT32, [2, 3])],
                   [("y", T.INT32, None)], opset=13)
    with pytest.raises(ModelError, match="int32"):
        import_model(m)


# ---- ArgMax / ArgMin ------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("last", [0, 1])
def test_arg(op: str, last: int) -> None:
    nodes, outputs = [], []
    for axis in range(-1, 4):
        for keep in (0, 1):
            name = f"y{axis + 1}_{keep}"
            nodes.append(helper.make_node(op, ["x"], [name], axis=axis, keepdims=keep, select_last_index=last))
            outputs.append((name, T.INT64, None))
    m = make_model(nodes, [("x", F, SHAPE)], outputs, opset=13)
    x = np.round(rand(*SHAPE, seed=4, low=-2, high=2))  # many ties: first vs last index matters
    check_model(m, {"x": x})


def test_arg_int_and_default_axis() -> None:
    nodes = [helper.make_node("ArgMax", ["x"], ["a"]), helper.make_node("ArgMin", ["x"], ["b"], axis=1, keepdims=0)]
    m = make_model(nodes, [("x", T.INT64, [5, 7])], [("a", T.INT64, None), ("b", T.INT64, None)], opset=11)
    check_model(m, {"x": np.random.default_rng(5).integers(-50, 50, (5, 7))})


# ---- Softmax / LogSoftmax -------------------------------------------------------------------
@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax(op: str, opset: int) -> None:
    """Every axis of a 3-D and a 4-D input: opset 11 normalizes over all dims from `axis`,
    opset 13 over the single `axis` (strided when it is not the last)."""
    nodes, outputs = [], []
    for name, rank in (("x3", 3), ("x4", 4)):
        for axis in range(-rank, rank):
            out = f"{name}_{axis + rank}"
            nodes.append(helper.make_node(op, [name], [out], axis=axis))
            outputs.append((out, F, None))
    nodes.append(helper.make_node(op, ["x4"], ["dflt"]))
    outputs.append(("dflt", F, None))
    m = make_model(nodes, [("x3", F, [3, 4, 5]), ("x4", F, [2, 3, 4, 6])], outputs, opset=opset)
    feeds = {"x3": rand(3, 4, 5, seed=6, low=-5, high=5), "x4": rand(2, 3, 4, 6, seed=7, low=-5, high=5)}
    # onnx.reference applies the opset-13 (single axis) rule at every opset, so opset 11 is
    # checked against onnxruntime and a numpy version of the coerce-to-2-D rule instead.
    got = check_model(m, feeds, reference=opset >= 13)
    if opset < 13:
        for k, node in enumerate(nodes):
            x = feeds[node.input[0]]
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1) % x.ndim
            rows = x.reshape(int(np.prod(x.shape[:axis])), -1).astype(np.float64)
            z = rows - rows.max(axis=1, keepdims=True)
            lse = np.log(np.exp(z).sum(axis=1, keepdims=True))
            want = (z - lse) if op == "LogSoftmax" else np.exp(z - lse)
            np.testing.assert_allclose(got[k], want.reshape(x.shape), rtol=1e-4, atol=1e-5, err_msg=node.output[0])


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_wide_tail(op: str) -> None:
    """Tails longer than one chunk (with and without a remainder) and large logits."""
    nodes = [helper.make_node(op, ["x"], ["a"], axis=1), helper.make_node(op, ["w"], ["b"], axis=0),
             helper.make_node(op, ["x"], ["c"], axis=2)]
    m = make_model(nodes, [("x", F, [2, 5, 150]), ("w", F, [3, 128])], [("a", F, None), ("b", F, None), ("c", F, None)])
    # |x| <= 30 keeps exp(x - max) above float32's smallest normal, so onnx.reference (which
    # takes log(softmax)) stays finite; w would overflow exp() without the max subtraction.
    check_model(m, {"x": rand(2, 5, 150, seed=8, low=-30, high=30), "w": rand(3, 128, seed=9, low=80, high=100)})


@pytest.mark.parametrize("device", ["rpi4", "rpi3"])
def test_reduce_softmax_arm(device: str) -> None:
    nodes = [helper.make_node("ReduceMean", ["x", "a1"], ["m"], keepdims=0),
             helper.make_node("ReduceMax", ["x", "a0"], ["mx"]),
             helper.make_node("ReduceLogSumExp", ["x", "a0"], ["lse"], keepdims=0),
             helper.make_node("ReduceL2", ["x"], ["l2"], keepdims=0),
             helper.make_node("ArgMax", ["x"], ["am"], axis=1, select_last_index=1),
             helper.make_node("ArgMin", ["x"], ["an"], axis=2, keepdims=0),
             helper.make_node("Softmax", ["x"], ["s1"], axis=1),
             helper.make_node("LogSoftmax", ["x"], ["s2"], axis=-1)]
    outs = [("m", F, None), ("mx", F, None), ("lse", F, None), ("l2", F, None), ("am", T.INT64, None),
            ("an", T.INT64, None), ("s1", F, None), ("s2", F, None)]
    m = make_model(nodes, [("x", F, [2, 3, 70])], outs,
                   {"a1": np.array([-1], np.int64), "a0": np.array([0, 1], np.int64)}, opset=18)
    check_model(m, {"x": rand(2, 3, 70, seed=10, low=-4, high=4)}, device=device)

"""Data-movement ops vs onnxruntime and onnx.reference, on host and (subset) under qemu.

Most tests put several nodes reading the same graph input into one model (one output each), so
one build checks many attribute combinations. Data is always a graph input: all-constant nodes
would be folded at import and never reach the kernels.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.errors import ModelError
from tests.helpers import check_model, make_model, rand, run_edgec

F, I64, I32 = T.FLOAT, T.INT64, T.INT32
BIG = np.iinfo(np.int64).max


def node(op: str, ins: list[str], out: str, **attrs) -> object:
    return helper.make_node(op, ins, [out], **attrs)


def i64(*v: int) -> np.ndarray:
    return np.array(v, np.int64)


# ---- Concat ------------------------------------------------------------------------------
@pytest.mark.parametrize("opset", [7, 13])
def test_concat(opset: int) -> None:
    nodes = [node("Concat", ["a", "b"], "c0", axis=0), node("Concat", ["a", "c"], "c1", axis=1),
             node("Concat", ["a", "a", "d"], "c2", axis=2), node("Concat", ["a", "w"], "c3", axis=2)]
    if opset >= 11:
        nodes.append(node("Concat", ["a", "b", "a"], "c4", axis=-3))
    outs = [(n.output[0], F, None) for n in nodes]
    m = make_model(nodes, [("a", F, [2, 3, 4]), ("b", F, [1, 3, 4]), ("c", F, [2, 5, 4]),
                           ("d", F, [2, 3, 1])], outs, {"w": rand(2, 3, 7, seed=9)}, opset=opset)
    check_model(m, {"a": rand(2, 3, 4), "b": rand(1, 3, 4, seed=1), "c": rand(2, 5, 4, seed=2),
                    "d": rand(2, 3, 1, seed=3)})


def test_concat_int64_and_bool() -> None:
    nodes = [node("Concat", ["a", "b"], "y", axis=1), node("Concat", ["p", "q"], "z", axis=0)]
    m = make_model(nodes, [("a", I64, [3, 2]), ("b", I64, [3, 5]), ("p", T.BOOL, [2]),
                           ("q", T.BOOL, [3])], [("y", I64, None), ("z", T.BOOL, None)])
    check_model(m, {"a": np.arange(6, dtype=np.int64).reshape(3, 2) - 3,
                    "b": np.arange(15, dtype=np.int64).reshape(3, 5) * 7,
                    "p": np.array([True, False]), "q": np.array([False, True, True])})


# ---- Split -------------------------------------------------------------------------------
@pytest.mark.parametrize("opset,kind", [(7, "equal"), (11, "attr"), (11, "equal_neg_axis"),
                                        (13, "input"), (13, "equal"), (18, "num_outputs"),
                                        (18, "input")])
def test_split(opset: int, kind: str) -> None:
    inits: dict[str, np.ndarray] = {}
    if kind == "attr":
        n = helper.make_node("Split", ["x"], ["y0", "y1", "y2"], axis=1, split=[1, 4, 1])
    elif kind == "input":
        inits["s"] = i64(2, 0, 3, 1)
        n = helper.make_node("Split", ["x", "s"], ["y0", "y1", "y2", "y3"], axis=1)
    elif kind == "num_outputs":  # 6 -> 2,2,2 ; uneven case along the last axis below
        n = helper.make_node("Split", ["x"], ["y0", "y1", "y2", "y3"], axis=2, num_outputs=4)
    elif kind == "equal_neg_axis":
        n = helper.make_node("Split", ["x"], ["y0", "y1", "y2"], axis=-2)
    else:
        n = helper.make_node("Split", ["x"], ["y0", "y1"], axis=0)
    shape = [4, 6, 7] if kind == "num_outputs" else [4, 6, 5]
    outs = [(o, F, None) for o in n.output]
    m = make_model([n], [("x", F, shape)], outs, inits, opset=opset)
    check_model(m, {"x": rand(*shape)})


# ---- Transpose ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape,perms", [
    ([2, 3, 4, 5], [[0, 2, 3, 1], [0, 3, 1, 2], [3, 2, 1, 0], [1, 0, 2, 3], [0, 1, 3, 2], None]),
    ([7, 9], [[1, 0]]),
    ([2, 1, 3, 1, 4, 2], [[5, 4, 3, 2, 1, 0], [0, 2, 4, 1, 3, 5], [2, 0, 1, 5, 3, 4]]),
])
def test_transpose(shape: list[int], perms: list) -> None:
    nodes = [node("Transpose", ["x"], f"y{k}", **({} if p is None else {"perm": p}))
             for k, p in enumerate(perms)]
    m = make_model(nodes, [("x", F, shape)], [(f"y{k}", F, None) for k in range(len(perms))])
    check_model(m, {"x": rand(*shape)})


def test_transpose_int8_uint8() -> None:
    nodes = [node("Transpose", ["a"], "y", perm=[2, 0, 1]), node("Transpose", ["b"], "z", perm=[1, 0])]
    m = make_model(nodes, [("a", T.INT8, [3, 4, 5]), ("b", T.UINT8, [16, 3])],
                   [("y", T.INT8, None), ("z", T.UINT8, None)])
    rng = np.random.default_rng(0)
    check_model(m, {"a": rng.integers(-128, 127, (3, 4, 5), dtype=np.int8),
                    "b": rng.integers(0, 255, (16, 3), dtype=np.uint8)})


def test_float16_and_bool_moves() -> None:
    nodes = [node("Transpose", ["h"], "t", perm=[1, 0]), node("Pad", ["h", "p", "v"], "ph"),
             node("Tile", ["b", "r"], "tb"), node("Pad", ["b", "p"], "pb")]
    m = make_model(nodes, [("h", T.FLOAT16, [3, 5]), ("b", T.BOOL, [2, 3])],
                   [("t", T.FLOAT16, None), ("ph", T.FLOAT16, None), ("tb", T.BOOL, None),
                    ("pb", T.BOOL, None)],
                   {"p": i64(1, 0, 0, 2), "v": np.array(1.5, np.float16), "r": i64(2, 2)}, opset=13)
    check_model(m, {"h": rand(3, 5, dtype=np.float16),
                    "b": np.array([[True, False, True], [False, False, True]])})


# ---- Slice -------------------------------------------------------------------------------
SLICES = [  # (starts, ends, axes, steps)
    ([1, 0], [3, 5], [0, 2], [1, 1]),
    ([-3], [-1], [1], [1]),
    ([0, 2], [BIG, BIG], [1, 2], [2, 3]),
    ([-1], [-BIG], [2], [-1]),  # full reverse
    ([5, 3], [0, -10], [2, 1], [-2, -1]),
    ([-100, 1], [100, 2], [-1, -3], [1, 1]),  # clamped bounds, negative axes
    ([2], [2], [0], [1]),  # empty
    ([3, 0, 1], [0, 6, 6], [0, 1, 2], [-2, 4, -1]),  # empty on the last axis (start 1 > end)
    ([1], [4], [1], [1]),
]


def test_slice_opset13() -> None:
    nodes, inits = [], {}
    for k, (s, e, a, st) in enumerate(SLICES):
        for nm, v in zip("seap", (s, e, a, st)):
            inits[f"{nm}{k}"] = i64(*v)
        nodes.append(node("Slice", ["x", f"s{k}", f"e{k}", f"a{k}", f"p{k}"], f"y{k}"))
    nodes.append(node("Slice", ["x", "s0", "e0"], "yd"))  # default axes and steps
    m = make_model(nodes, [("x", F, [4, 6, 7])], [(n.output[0], F, None) for n in nodes], inits)
    check_model(m, {"x": rand(4, 6, 7)})


def test_slice_opset9_attrs() -> None:
    nodes = [node("Slice", ["x"], "y0", starts=[1, -4], ends=[BIG, -1], axes=[1, 2]),
             node("Slice", ["x"], "y1", starts=[0, 1], ends=[2, 3]),
             node("Slice", ["x"], "y2", starts=[-2], ends=[1000], axes=[0])]
    m = make_model(nodes, [("x", F, [3, 5, 6])], [(f"y{k}", F, None) for k in range(3)], opset=9)
    check_model(m, {"x": rand(3, 5, 6)})


def test_slice_int64_data() -> None:
    m = make_model([node("Slice", ["x", "s", "e", "a", "p"], "y")], [("x", I64, [10, 3])],
                   [("y", I64, None)], {"s": i64(8), "e": i64(-BIG), "a": i64(0), "p": i64(-3)})
    check_model(m, {"x": np.arange(30, dtype=np.int64).reshape(10, 3)})


# ---- Gather ------------------------------------------------------------------------------
def test_gather_constant_indices() -> None:
    idx = {"i0": i64(2, 0, -1, 2), "i1": np.array([[0, -3], [4, 1], [2, 2]], np.int64),
           "i2": np.array(1, np.int64), "i3": np.array([-1, 0, 3], np.int32), "i4": i64(1, 2, 3)}
    nodes = [node("Gather", ["x", "i0"], "y0", axis=0), node("Gather", ["x", "i1"], "y1", axis=1),
             node("Gather", ["x", "i2"], "y2", axis=2), node("Gather", ["x", "i3"], "y3", axis=-1),
             node("Gather", ["x", "i4"], "y4", axis=1)]  # contiguous indices -> affine copy
    m = make_model(nodes, [("x", F, [3, 5, 4])], [(f"y{k}", F, None) for k in range(5)], idx)
    check_model(m, {"x": rand(3, 5, 4)})


@pytest.mark.parametrize("itype", [I64, I32])
def test_gather_runtime_indices(itype: int) -> None:
    nodes = [node("Gather", ["x", "i"], "y0", axis=1), node("Gather", ["x", "j"], "y1", axis=0),
             node("Gather", ["emb", "i"], "y2", axis=0)]  # embedding lookup: constant table
    m = make_model(nodes, [("x", F, [4, 6, 3]), ("i", itype, [2, 3]), ("j", itype, [])],
                   [(f"y{k}", F, None) for k in range(3)], {"emb": rand(7, 5, seed=4)})
    dt = np.int64 if itype == I64 else np.int32
    check_model(m, {"x": rand(4, 6, 3), "i": np.array([[0, 5, -1], [-6, 2, 3]], dt),
                    "j": np.array(-2, dt)})


def test_gather_constant_index_out_of_range() -> None:
    m = make_model([node("Gather", ["x", "i"], "y", axis=0)], [("x", F, [3, 2])], [("y", F, None)],
                   {"i": i64(0, 3)})
    with pytest.raises(ModelError, match="index 3 is out of range"):
        run_edgec(m, {"x": rand(3, 2)})


# ---- Pad ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_opset10_attrs(mode: str) -> None:
    attrs = {"mode": mode, "pads": [0, 1, 2, 0, 2, 1]}
    if mode == "constant":
        attrs["value"] = 1.5
    m = make_model([node("Pad", ["x"], "y", **attrs)], [("x", F, [2, 3, 4])], [("y", F, None)], opset=10)
    check_model(m, {"x": rand(2, 3, 4)})


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_opset11_inputs(mode: str) -> None:
    # One model: 4-D NCHW padding (the common conv case), pads on every axis, pads on one axis.
    inits = {"p0": i64(0, 0, 1, 2, 0, 0, 3, 1), "p1": i64(1, 0, 2, 1, 1, 2, 0, 3),
             "p2": i64(0, 0, 0, 3, 0, 0, 0, 2), "v": np.array(-2.5, np.float32)}
    ins = ["v"] if mode == "constant" else []
    nodes = [node("Pad", ["x", f"p{k}", *ins], f"y{k}", mode=mode) for k in range(3)]
    nodes.append(node("Pad", ["x", "p0"], "yd", mode=mode))  # constant_value absent: 0
    m = make_model(nodes, [("x", F, [2, 3, 4, 5])], [(n.output[0], F, None) for n in nodes],
                   inits, opset=11)
    check_model(m, {"x": rand(2, 3, 4, 5)})


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_opset19_axes(mode: str) -> None:
    inits = {"p": i64(1, 2, 2, 1), "a": i64(-1, 1), "v": np.array(7.0, np.float32)}
    ins = ["x", "p", "v", "a"] if mode == "constant" else ["x", "p", "", "a"]
    m = make_model([node("Pad", ins, "y", mode=mode)], [("x", F, [2, 3, 4])], [("y", F, None)],
                   inits, opset=19)
    check_model(m, {"x": rand(2, 3, 4)})


def test_pad_int_and_wide_rows() -> None:
    # int64 constant padding, and a row long enough that the copy loop is vectorized.
    nodes = [node("Pad", ["a", "p", "v"], "y"), node("Pad", ["b", "q"], "z", mode="edge")]
    m = make_model(nodes, [("a", I64, [3, 4]), ("b", F, [2, 67])], [("y", I64, None), ("z", F, None)],
                   {"p": i64(1, 0, 0, 2), "v": np.array(-9, np.int64), "q": i64(1, 5, 2, 9)}, opset=13)
    check_model(m, {"a": np.arange(12, dtype=np.int64).reshape(3, 4), "b": rand(2, 67)})


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect"])
def test_pad_negative_crops(mode: str) -> None:
    # onnx.reference (np.pad) rejects negative pads: compare with onnxruntime and numpy slicing.
    m = make_model([node("Pad", ["x", "p"], "y", mode=mode)], [("x", F, [3, 6, 5])], [("y", F, None)],
                   {"p": i64(-1, 1, -2, 0, -2, 0)}, opset=13)
    x = rand(3, 6, 5)
    got = check_model(m, {"x": x}, reference=False)[0]
    want_mid = np.pad(x[1:, :4, 2:], ((0, 0), (1, 0), (0, 0)), mode=mode)
    np.testing.assert_array_equal(got, want_mid)


def test_pad_non_constant_pads_is_model_error() -> None:
    m = make_model([node("Pad", ["x", "p"], "y")], [("x", F, [3]), ("p", I64, [2])], [("y", F, [5])],
                   opset=13)
    with pytest.raises(ModelError):
        run_edgec(m, {"x": rand(3), "p": i64(1, 1)})


# ---- Expand / Tile -----------------------------------------------------------------------
def test_expand() -> None:
    inits = {"s0": i64(3, 4, 5), "s1": i64(2, 1, 4, 1), "s2": i64(4, 1), "s3": i64(2, 3, 4, 5)}
    nodes = [node("Expand", ["x", "s0"], "y0"), node("Expand", ["x", "s1"], "y1"),
             node("Expand", ["x", "s2"], "y2"), node("Expand", ["c", "s3"], "y3")]
    m = make_model(nodes, [("x", F, [4, 1]), ("c", F, [3, 1, 5])],
                   [(n.output[0], F, None) for n in nodes], inits)
    check_model(m, {"x": rand(4, 1), "c": rand(3, 1, 5, seed=1)})


def test_tile() -> None:
    inits = {"r0": i64(2, 1, 3), "r1": i64(1, 4, 1), "r2": i64(3, 2, 2), "r3": i64(1, 1, 9)}
    nodes = [node("Tile", ["x", f"r{k}"], f"y{k}") for k in range(4)]
    m = make_model(nodes, [("x", F, [2, 3, 5])], [(n.output[0], F, None) for n in nodes], inits)
    check_model(m, {"x": rand(2, 3, 5)})


# ---- DepthToSpace / SpaceToDepth ---------------------------------------------------------
@pytest.mark.parametrize("opset", [11, 13])
def test_depth_space(opset: int) -> None:
    nodes = [node("DepthToSpace", ["x"], "dcr", blocksize=2, mode="DCR"),
             node("DepthToSpace", ["x"], "crd", blocksize=2, mode="CRD"),
             node("DepthToSpace", ["x"], "dflt", blocksize=2),
             node("SpaceToDepth", ["x"], "s2d", blocksize=3),
             node("SpaceToDepth", ["dcr"], "back", blocksize=2)]
    m = make_model(nodes, [("x", F, [2, 8, 3, 6])], [(n.output[0], F, None) for n in nodes],
                   opset=opset)
    check_model(m, {"x": rand(2, 8, 3, 6)})


# ---- ARM ---------------------------------------------------------------------------------
@pytest.mark.parametrize("device", ["rpi4", "rpi3"])
def test_movement_arm(device: str) -> None:
    inits = {"p": i64(0, 1, 2, 0, 1, 1), "s": i64(-1, 0), "e": i64(-BIG, 5), "a": i64(2, 1),
             "st": i64(-1, 2), "r": i64(2, 1, 1), "g": np.array([[2, -1], [0, 0]], np.int64)}
    nodes = [node("Transpose", ["x"], "t", perm=[0, 2, 1]),
             node("Pad", ["t", "p"], "pr", mode="reflect"),
             node("Slice", ["pr", "s", "e", "a", "st"], "sl"),
             node("Tile", ["sl", "r"], "ti"),
             node("Concat", ["ti", "ti"], "cc", axis=-1),
             node("Gather", ["cc", "g"], "ga", axis=1),
             node("Gather", ["x", "i"], "gr", axis=2),
             node("DepthToSpace", ["d"], "ds", blocksize=2, mode="CRD"),
             node("Pad", ["d", "pc", "v"], "pc_out"),
             node("Expand", ["x", "sh"], "ex"),
             helper.make_node("Split", ["d"], ["s0", "s1"], axis=1)]
    inits.update({"pc": i64(0, 1, 0, 2, 0, 0, 1, 1), "v": np.array(-3.0, np.float32),
                  "sh": i64(2, 2, 3, 5)})
    outs = ["ga", "gr", "ds", "pc_out", "ex", "s0", "s1"]
    m = make_model(nodes, [("x", F, [2, 3, 5]), ("i", I64, [4]), ("d", F, [1, 8, 2, 3])],
                   [(o, F, None) for o in outs], inits, opset=13)
    check_model(m, {"x": rand(2, 3, 5), "i": i64(4, -5, 2, 0), "d": rand(1, 8, 2, 3, seed=5)},
                device=device)

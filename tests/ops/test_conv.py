"""Conv, ConvTranspose and BatchNormalization vs onnxruntime and onnx.reference (host), plus a
representative subset under qemu (rpi4 = aarch64, rpi3 = armv7)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.errors import ModelError
from edgec.importer import import_model
from edgec.pipeline import run_pipeline
from tests.helpers import assert_close, check_model, make_model, rand, run_edgec, run_reference

F = T.FLOAT


def conv_model(op: str, x_shape: list[int], w_shape: list[int], bias: bool, opset: int = 17,
               post: str | None = None, **attrs: object):
    """One Conv/ConvTranspose node with constant weights (and an optional activation after it)."""
    out_ch = w_shape[0] if op == "Conv" else w_shape[1] * int(attrs.get("group", 1))
    inits = {"w": rand(*w_shape, seed=1, low=-1, high=1)}
    ins = ["x", "w"]
    if bias:
        inits["b"] = rand(out_ch, seed=2)
        ins.append("b")
    nodes = [helper.make_node(op, ins, ["c" if post else "y"], **attrs)]
    if post:
        nodes.append(helper.make_node(post, ["c"], ["y"]))
    return make_model(nodes, [("x", F, x_shape)], [("y", F, None)], inits, opset=opset)


def check_vs_reference(model, feeds: dict[str, np.ndarray]) -> None:
    """For attribute combinations onnxruntime rejects (e.g. SAME padding with dilations)."""
    got = run_edgec(model, feeds)
    for k, want in enumerate(run_reference(model, feeds)):
        assert_close(got[k], np.asarray(want), 1e-4, f"output {k} vs onnx.reference")


CONV_CASES = {
    "3x3-valid": ([1, 3, 8, 9], [4, 3, 3, 3], {}),
    "3x3-pad1-stride2": ([1, 3, 9, 8], [5, 3, 3, 3], dict(pads=[1, 1, 1, 1], strides=[2, 2])),
    "asym-pads-nonsquare": ([2, 3, 7, 10], [4, 3, 2, 5], dict(pads=[0, 2, 1, 1], strides=[1, 2])),
    "dilation": ([1, 2, 11, 9], [3, 2, 3, 2], dict(dilations=[2, 3], pads=[2, 1, 1, 3])),
    "stride-gt-kernel": ([1, 2, 10, 11], [3, 2, 2, 2], dict(strides=[3, 4], pads=[1, 0, 0, 1])),
    "kernel-gt-input": ([1, 2, 3, 4], [3, 2, 5, 5], dict(pads=[2, 2, 2, 2])),
    "1x1": ([2, 8, 5, 6], [6, 8, 1, 1], {}),
    "1x1-stride2": ([1, 4, 7, 7], [5, 4, 1, 1], dict(strides=[2, 2])),
    "group2": ([1, 4, 8, 8], [6, 2, 3, 3], dict(group=2, pads=[1, 1, 1, 1])),
    "group3-stride-dil": ([2, 6, 9, 10], [3, 2, 3, 3], dict(group=3, strides=[2, 1], dilations=[1, 2], pads=[1, 2, 0, 1])),
    "depthwise": ([1, 5, 9, 8], [5, 1, 3, 3], dict(group=5, pads=[1, 1, 1, 1])),
    "depthwise-s2": ([2, 4, 10, 9], [4, 1, 3, 3], dict(group=4, strides=[2, 2], pads=[1, 1, 1, 1])),
    "depthwise-mult2": ([1, 3, 8, 7], [6, 1, 5, 3], dict(group=3, pads=[2, 1, 2, 1], dilations=[1, 2])),
    "wide-row": ([1, 2, 3, 70], [3, 2, 3, 3], dict(pads=[1, 1, 1, 1])),
}


# every shape with a bias; a few without (keeps the suite fast)
CONV_PARAMS = [(c, True) for c in CONV_CASES] + [(c, False) for c in ("3x3-pad1-stride2", "group2", "depthwise")]


@pytest.mark.parametrize("case,bias", CONV_PARAMS)
def test_conv_2d(case: str, bias: bool) -> None:
    xs, ws, attrs = CONV_CASES[case]
    check_model(conv_model("Conv", xs, ws, bias, **attrs), {"x": rand(*xs, seed=3)})


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("strides", [[1, 1], [2, 3]])
def test_conv_auto_pad(auto_pad: str, strides: list[int]) -> None:
    m = conv_model("Conv", [1, 2, 7, 8], [3, 2, 3, 4], True, auto_pad=auto_pad, strides=strides)
    check_model(m, {"x": rand(1, 2, 7, 8, seed=4)})


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_conv_auto_pad_dilated(auto_pad: str) -> None:
    # onnxruntime refuses SAME padding with dilations; the ONNX reference is the oracle here.
    m = conv_model("Conv", [1, 2, 9, 8], [3, 2, 3, 2], True, auto_pad=auto_pad, strides=[2, 1],
                   dilations=[2, 3])
    check_vs_reference(m, {"x": rand(1, 2, 9, 8, seed=5)})


CONV1D_CASES = {
    "plain": ([2, 3, 20], [4, 3, 5], {}),
    "pads-stride": ([1, 4, 17], [6, 4, 3], dict(pads=[2, 1], strides=[2])),
    "dilation-group": ([1, 4, 19], [6, 2, 3], dict(dilations=[3], group=2, pads=[1, 3])),
    "depthwise": ([1, 5, 16], [5, 1, 7], dict(group=5, pads=[3, 3])),
    "same-upper-s2": ([1, 3, 15], [2, 3, 4], dict(auto_pad="SAME_UPPER", strides=[2])),
    "same-lower": ([1, 3, 15], [2, 3, 4], dict(auto_pad="SAME_LOWER")),
}


@pytest.mark.parametrize("case", list(CONV1D_CASES))
def test_conv_1d(case: str) -> None:
    xs, ws, attrs = CONV1D_CASES[case]
    check_model(conv_model("Conv", xs, ws, True, **attrs), {"x": rand(*xs, seed=6)})


@pytest.mark.parametrize("opset", [7, 11, 21])
def test_conv_opsets(opset: int) -> None:
    m = conv_model("Conv", [1, 2, 6, 7], [3, 2, 3, 3], True, opset=opset, pads=[1, 0, 1, 2], strides=[1, 2])
    check_model(m, {"x": rand(1, 2, 6, 7, seed=7)})


def test_conv_runtime_weights() -> None:
    """Weights and bias as graph inputs (not constants): same kernel, pointers into the arena."""
    m = make_model([helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 0, 1], group=2)],
                   [("x", F, [1, 4, 6, 7]), ("w", F, [6, 2, 3, 2]), ("b", F, [6])], [("y", F, None)])
    check_model(m, {"x": rand(1, 4, 6, 7, seed=8), "w": rand(6, 2, 3, 2, seed=9), "b": rand(6, seed=10)})


def test_conv_runtime_bias_then_scale() -> None:
    """A per-channel Mul after a Conv whose bias is a graph input must not be folded."""
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Mul", ["c", "s"], ["y"])]
    m = make_model(nodes, [("x", F, [1, 2, 5, 6]), ("b", F, [3])], [("y", F, None)],
                   {"w": rand(3, 2, 3, 3, seed=1), "s": rand(3, 1, 1, seed=2)})
    assert run_pipeline(import_model(m)).op_counts() == {"Conv": 1, "Mul": 1}
    check_model(m, {"x": rand(1, 2, 5, 6, seed=3), "b": rand(3, seed=4)})


@pytest.mark.parametrize("post", ["Relu", "Sigmoid", "LeakyRelu", "HardSwish"])
def test_conv_fused_activation(post: str) -> None:
    m = conv_model("Conv", [1, 3, 8, 8], [4, 3, 3, 3], True, post=post, pads=[1, 1, 1, 1], strides=[2, 1])
    g = run_pipeline(import_model(m))
    assert g.op_counts() == {"Conv": 1} and g.nodes[0].attrs["activation"][0] == post
    check_model(m, {"x": rand(1, 3, 8, 8, seed=11)})


def test_conv_fused_clip() -> None:
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], group=3, pads=[1, 1, 1, 1]),
             helper.make_node("Clip", ["c", "lo", "hi"], ["y"])]
    inits = {"w": rand(3, 1, 3, 3, seed=12), "lo": np.array(0, np.float32), "hi": np.array(2, np.float32)}
    m = make_model(nodes, [("x", F, [1, 3, 6, 6])], [("y", F, None)], inits)
    assert run_pipeline(import_model(m)).op_counts() == {"Conv": 1}
    check_model(m, {"x": rand(1, 3, 6, 6, seed=13)})


# ---- BatchNormalization --------------------------------------------------------------------
def bn_inits(c: int, shape: tuple[int, ...] | None = None, seed: int = 20) -> dict[str, np.ndarray]:
    s = shape or (c,)
    return {"scale": rand(*s, seed=seed, low=0.5, high=1.5), "bias": rand(*s, seed=seed + 1),
            "mean": rand(*s, seed=seed + 2), "var": rand(*s, seed=seed + 3, low=0.1, high=2.0)}


BN_IN = ["scale", "bias", "mean", "var"]


@pytest.mark.parametrize("opset", [7, 9, 14, 15])
@pytest.mark.parametrize("rank", [3, 4])
def test_conv_bn_relu_folded(opset: int, rank: int) -> None:
    xs, ws = ([1, 3, 9, 8], [4, 3, 3, 3]) if rank == 4 else ([1, 3, 12], [4, 3, 3])
    bn_attrs = {"epsilon": 1e-3} if opset >= 9 else {"epsilon": 1e-3, "spatial": 1}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1] * (2 * (rank - 2))),
             helper.make_node("BatchNormalization", ["c", *BN_IN], ["n"], **bn_attrs),
             helper.make_node("Relu", ["n"], ["y"])]
    inits = {"w": rand(*ws, seed=1), "b": rand(4, seed=2), **bn_inits(4)}
    m = make_model(nodes, [("x", F, xs)], [("y", F, None)], inits, opset=opset)
    g = import_model(m)
    assert g.op_counts() == {"Add": 1, "Conv": 1, "Mul": 1, "Relu": 1}
    consts = [g.values[n.inputs[1]].shape for n in g.nodes if n.op in ("Mul", "Add")]
    assert consts == [(4,) + (1,) * (rank - 2)] * 2
    g = run_pipeline(g)
    assert g.op_counts() == {"Conv": 1}, "BN should fold into the Conv"
    assert g.nodes[0].attrs["activation"][0] == "Relu"
    # onnx.reference's BatchNormalization before opset 14 runs in training mode (opset 9) or
    # returns a malformed result (opset 7): onnxruntime only there
    check_model(m, {"x": rand(*xs, seed=14)}, reference=opset >= 14)


def test_depthwise_conv_bn_folded_no_bias() -> None:
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], group=4, strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", *BN_IN], ["y"])]
    m = make_model(nodes, [("x", F, [2, 4, 9, 9])], [("y", F, None)],
                   {"w": rand(4, 1, 3, 3, seed=1), **bn_inits(4)})
    assert run_pipeline(import_model(m)).op_counts() == {"Conv": 1}
    check_model(m, {"x": rand(2, 4, 9, 9, seed=15)})


@pytest.mark.parametrize("shape", [[3, 5], [2, 5, 7], [1, 5, 4, 6], [1, 5, 2, 3, 4]])
def test_bn_after_non_conv(shape: list[int]) -> None:
    """BN after a non-conv op stays Mul + Add (any rank >= 2)."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("BatchNormalization", ["r", *BN_IN], ["y"], epsilon=1e-4)]
    m = make_model(nodes, [("x", F, shape)], [("y", F, None)], bn_inits(5))
    assert run_pipeline(import_model(m)).op_counts() == {"Add": 1, "Mul": 1, "Relu": 1}
    check_model(m, {"x": rand(*shape, seed=16)})


def test_bn_float64() -> None:
    inits = {k: v.astype(np.float64) for k, v in bn_inits(3).items()}
    m = make_model([helper.make_node("BatchNormalization", ["x", *BN_IN], ["y"])],
                   [("x", T.DOUBLE, [2, 3, 4, 5])], [("y", T.DOUBLE, None)], inits)
    check_model(m, {"x": rand(2, 3, 4, 5, seed=17, dtype=np.float64)})


def test_bn_spatial0_opset7() -> None:
    """Per-activation statistics (spatial=0); onnx.reference cannot run this one."""
    m = make_model([helper.make_node("BatchNormalization", ["x", *BN_IN], ["y"], spatial=0)],
                   [("x", F, [2, 3, 4, 5])], [("y", F, None)], bn_inits(3, (3, 4, 5)), opset=7)
    check_model(m, {"x": rand(2, 3, 4, 5, seed=18)}, reference=False)


def test_bn_errors() -> None:
    m = make_model([helper.make_node("BatchNormalization", ["x", *BN_IN], ["y", "rm", "rv"], training_mode=1)],
                   [("x", F, [2, 3, 4])], [("y", F, None), ("rm", F, None), ("rv", F, None)],
                   bn_inits(3), opset=15)
    with pytest.raises(ModelError, match="training_mode"):
        import_model(m)


@pytest.mark.parametrize("shape", [[2, 3, 4], [1, 3, 5, 6]])
def test_bn_runtime_statistics(shape: list[int]) -> None:
    """Statistics fed as graph inputs: a and b are computed in the graph, then Mul + Add."""
    m = make_model([helper.make_node("BatchNormalization", ["x", *BN_IN], ["y"], epsilon=1e-2)],
                   [("x", F, shape)] + [(n, F, [3]) for n in BN_IN], [("y", F, None)])
    check_model(m, {"x": rand(*shape, seed=19), **bn_inits(3)})


def test_conv_errors() -> None:
    m = conv_model("Conv", [1, 2, 4, 4, 4], [3, 2, 2, 2, 2], False)
    with pytest.raises(ModelError, match="3-D Conv is not supported"):
        import_model(m)
    m = conv_model("ConvTranspose", [1, 2, 4, 4, 4], [2, 3, 2, 2, 2], False)
    with pytest.raises(ModelError, match="3-D ConvTranspose is not supported"):
        import_model(m)
    m = make_model([helper.make_node("Conv", ["x", "w"], ["y"])], [("x", T.FLOAT16, [1, 2, 4, 4])],
                   [("y", T.FLOAT16, None)], {"w": rand(3, 2, 2, 2, dtype=np.float16)})
    with pytest.raises(ModelError, match="float16 is not supported"):
        import_model(m)


# ---- ConvTranspose ---------------------------------------------------------------------------
CONVT_CASES = {
    "plain": ([1, 3, 5, 6], [3, 4, 3, 3], {}),
    "stride2": ([2, 2, 4, 5], [2, 3, 3, 3], dict(strides=[2, 2])),
    "stride-nonsquare-pads": ([1, 2, 4, 5], [2, 3, 3, 2], dict(strides=[2, 3], pads=[1, 0, 2, 1])),
    "output-padding": ([1, 2, 4, 5], [2, 2, 3, 3], dict(strides=[3, 2], output_padding=[2, 1], pads=[1, 1, 0, 0])),
    "dilation": ([1, 2, 5, 4], [2, 3, 3, 2], dict(dilations=[2, 3], strides=[1, 2])),
    "kernel-lt-stride": ([1, 3, 4, 4], [3, 2, 2, 2], dict(strides=[3, 3])),
    "1x1-stride2": ([1, 4, 3, 5], [4, 2, 1, 1], dict(strides=[2, 2])),
    "output-shape": ([1, 2, 4, 5], [2, 3, 3, 2], dict(strides=[2, 3], output_shape=[10, 16])),
    "output-shape-same-upper": ([1, 2, 4, 5], [2, 3, 3, 2], dict(strides=[2, 3], output_shape=[7, 12], auto_pad="SAME_UPPER")),
    "output-shape-same-lower": ([1, 2, 4, 5], [2, 3, 3, 2], dict(strides=[2, 3], output_shape=[7, 12], auto_pad="SAME_LOWER")),
    "output-shape-adj-lower": ([1, 2, 4, 5], [2, 3, 3, 2], dict(strides=[2, 3], output_shape=[6, 11], output_padding=[1, 1], auto_pad="SAME_LOWER")),
    "valid": ([1, 2, 4, 5], [2, 3, 3, 2], dict(strides=[2, 2], auto_pad="VALID")),
}
# onnxruntime only: onnx.reference fails on these (positive total padding from output_shape
# without auto_pad, grouped ConvTranspose, and SAME without output_shape, where it pads wrong).
CONVT_ORT_ONLY = {
    "output-shape-notset": ([1, 2, 4, 5], [2, 3, 3, 2], dict(strides=[2, 3], output_shape=[7, 12])),
    "output-shape-notset-adj": ([1, 2, 4, 5], [2, 3, 3, 2], dict(strides=[2, 3], output_shape=[9, 14], output_padding=[1, 1])),
    "same-upper": ([1, 2, 4, 5], [2, 3, 3, 2], dict(strides=[2, 3], auto_pad="SAME_UPPER")),
    "same-lower-dil": ([1, 2, 4, 5], [2, 3, 3, 2], dict(strides=[2, 3], auto_pad="SAME_LOWER", dilations=[2, 2])),
    "group2": ([1, 4, 4, 5], [4, 3, 3, 2], dict(group=2, strides=[2, 1], pads=[1, 0, 0, 1])),
    "depthwise": ([2, 3, 5, 4], [3, 1, 3, 3], dict(group=3, strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])),
    "group2-dil-adj": ([1, 4, 4, 5], [4, 2, 2, 3], dict(group=2, strides=[2, 3], dilations=[2, 1], output_padding=[1, 2])),
}


@pytest.mark.parametrize("case", list(CONVT_CASES) + list(CONVT_ORT_ONLY))
def test_conv_transpose(case: str) -> None:
    xs, ws, attrs = CONVT_CASES.get(case) or CONVT_ORT_ONLY[case]
    m = conv_model("ConvTranspose", xs, ws, case != "plain", **attrs)
    check_model(m, {"x": rand(*xs, seed=30)}, reference=case in CONVT_CASES)


@pytest.mark.parametrize("case", ["plain", "stride-pads", "group-adj"])
def test_conv_transpose_1d(case: str) -> None:
    attrs = {"plain": {}, "stride-pads": dict(strides=[3], pads=[1, 2]),
             "group-adj": dict(group=2, strides=[2], output_padding=[1], dilations=[2])}[case]
    m = conv_model("ConvTranspose", [1, 4, 9], [4, 3, 4], True, **attrs)
    check_model(m, {"x": rand(1, 4, 9, seed=31)}, reference=case != "group-adj")


def test_conv_transpose_fused_relu_and_runtime_weights() -> None:
    m = conv_model("ConvTranspose", [1, 3, 4, 4], [3, 2, 3, 3], True, post="Relu", strides=[2, 2])
    g = run_pipeline(import_model(m))
    assert g.op_counts() == {"ConvTranspose": 1} and g.nodes[0].attrs["activation"][0] == "Relu"
    check_model(m, {"x": rand(1, 3, 4, 4, seed=32)})
    m = make_model([helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 1], pads=[0, 1, 1, 0])],
                   [("x", F, [1, 2, 3, 4]), ("w", F, [2, 3, 2, 3])], [("y", F, None)])
    check_model(m, {"x": rand(1, 2, 3, 4, seed=33), "w": rand(2, 3, 2, 3, seed=34)})


def test_conv_transpose_ambiguous_shape() -> None:
    """SAME + output_padding: ONNX shape inference and onnxruntime disagree on the size."""
    m = conv_model("ConvTranspose", [1, 2, 4, 5], [2, 3, 3, 2], False, strides=[2, 3],
                   auto_pad="SAME_UPPER", output_padding=[1, 2])
    with pytest.raises(ModelError, match="ambiguous"):
        import_model(m)


# ---- ARM (qemu) ------------------------------------------------------------------------------
@pytest.mark.parametrize("device", ["rpi4", "rpi3"])
def test_conv_arm(device: str) -> None:
    """Grouped conv + BN + Relu (folded), depthwise, 1x1 and a transposed conv in one model."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], group=2, strides=[2, 1], pads=[1, 2, 0, 1]),
             helper.make_node("BatchNormalization", ["c1", *BN_IN], ["n1"]),
             helper.make_node("Relu", ["n1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], group=6, pads=[1, 1, 1, 1], dilations=[1, 2]),
             helper.make_node("Conv", ["c2", "w3", "b3"], ["c3"]),
             helper.make_node("ConvTranspose", ["c3", "w4", "b4"], ["y"], strides=[2, 2], output_padding=[1, 0]),
             helper.make_node("Conv", ["x1d", "w5"], ["y1d"], strides=[2], pads=[1, 2])]
    inits = {"w1": rand(6, 2, 3, 3, seed=1), "b1": rand(6, seed=2), **bn_inits(6),
             "w2": rand(6, 1, 3, 3, seed=3), "w3": rand(5, 6, 1, 1, seed=4), "b3": rand(5, seed=5),
             "w4": rand(5, 3, 3, 3, seed=6, low=-0.5, high=0.5), "b4": rand(3, seed=7),
             "w5": rand(3, 2, 4, seed=8)}
    m = make_model(nodes, [("x", F, [1, 4, 9, 10]), ("x1d", F, [1, 2, 21])], [("y", F, None), ("y1d", F, None)],
                   inits)
    check_model(m, {"x": rand(1, 4, 9, 10, seed=40), "x1d": rand(1, 2, 21, seed=41)}, device=device)

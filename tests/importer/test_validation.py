"""Hostile and malformed models (issue 14): every one ends in one clean ModelError from the
importer, never a traceback, a hang or a huge allocation; valid corner cases still compile.

Most cases mutate one small Conv -> Relu -> Reshape model (or append a node to it) and check
the message names what is wrong. Files and external data: test_model_files.py; local functions,
input_shapes and hostile names: test_functions_and_shapes.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper
from onnx import numpy_helper as nh

from edgec.errors import ModelError
from edgec.importer import import_model, sandbox

RNG = np.random.default_rng(14)


def base(opset: int = 17) -> onnx.ModelProto:
    """x[1,3,8,8] -> Conv(w[4,3,3,3], b[4], pads 1) -> Relu (r) -> Reshape([1,-1]) -> y[1,256]."""
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Reshape", ["r", "shp"], ["y"], name="reshape")]
    inits = [nh.from_array(RNG.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
             nh.from_array(RNG.standard_normal(4).astype(np.float32), "b"),
             nh.from_array(np.array([1, -1], np.int64), "shp")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", T.FLOAT, [1, 256])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def init(m: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(t for t in m.graph.initializer if t.name == name)


def add(m: onnx.ModelProto, node: onnx.NodeProto, out_type: int = T.FLOAT,
        **inits: np.ndarray) -> None:
    """Append `node` (reading r and/or new initializers); its output becomes a graph output."""
    m.graph.initializer.extend(nh.from_array(v, k) for k, v in inits.items())
    m.graph.node.append(node)
    m.graph.output.append(helper.make_tensor_value_info(node.output[0], out_type, None))


def expect_error(m: onnx.ModelProto, *needles: str, **kw: object) -> str:
    with pytest.raises(ModelError) as exc:
        import_model(m, **kw)
    msg = str(exc.value)
    assert "\n" not in msg and len(msg) < 600, msg
    for n in needles:
        assert n in msg, f"{n!r} not in {msg!r}"
    return msg


def set_raw(name: str, fn: Callable[[bytes], bytes]) -> Callable[[onnx.ModelProto], None]:
    def mutate(m: onnx.ModelProto) -> None:
        t = init(m, name)
        t.raw_data = fn(t.raw_data)
    return mutate


def _typed(name: str, field: str, values: list, dtype: int | None = None) -> Callable:
    def mutate(m: onnx.ModelProto) -> None:
        t = init(m, name)
        t.ClearField("raw_data")
        if dtype is not None:
            t.data_type = dtype
        getattr(t, field).extend(values)
    return mutate


def _dims(name: str, dims: list[int]) -> Callable:
    def mutate(m: onnx.ModelProto) -> None:
        del init(m, name).dims[:]
        init(m, name).dims.extend(dims)
    return mutate


def _segment(m: onnx.ModelProto) -> None:
    init(m, "b").segment.begin = 0


def _bad_type(m: onnx.ModelProto) -> None:
    init(m, "b").data_type = 77


def _zp_300(m: onnx.ModelProto) -> None:
    zp = onnx.TensorProto(name="zp", data_type=T.UINT8, int32_data=[300])
    m.graph.initializer.append(zp)
    add(m, helper.make_node("QuantizeLinear", ["r", "s", "zp"], ["q"]), T.UINT8,
        s=np.array(0.5, np.float32))


def _constant_short(m: onnx.ModelProto) -> None:
    t = nh.from_array(np.ones(4, np.float32), "k")
    t.raw_data = t.raw_data[:-1]
    m.graph.node.insert(0, helper.make_node("Constant", [], ["k"], value=t))
    add(m, helper.make_node("Add", ["b", "k"], ["z"]))


TENSOR_CASES = {
    "raw_too_long": (set_raw("w", lambda r: r + b"\0" * 4), "436 bytes of raw_data; expected 432"),
    "raw_too_short": (set_raw("w", lambda r: r[:-4]), "428 bytes of raw_data; expected 432"),
    "dim_negative": (_dims("b", [-4]), "dim -4"),
    "dim_huge": (_dims("b", [2**40]), "dim 1099511627776"),
    "product_huge": (_dims("b", [2**31 - 1] * 4), "bytes per tensor"),
    "rank_9": (_dims("b", [1] * 8 + [4]), "rank 9"),
    "float_data_count": (_typed("b", "float_data", [1.0] * 5),
                         "5 values in float_data; expected 4"),
    "int64_data_count": (_typed("shp", "int64_data", [1, -1, 3]), "3 values in int64_data"),
    "unknown_type": (_bad_type, "element type 77"),
    "segment": (_segment, "segmented"),
    "uint8_out_of_range": (_zp_300, "value 300 in int32_data is out of range for uint8"),
    "constant_node_short": (_constant_short, "tensor 'k'"),
}


@pytest.mark.parametrize("case", sorted(TENSOR_CASES))
def test_malformed_tensors(case: str) -> None:
    mutate, needle = TENSOR_CASES[case]
    m = base()
    mutate(m)
    expect_error(m, needle)


def _node(k: int, **changes: object) -> Callable:
    def mutate(m: onnx.ModelProto) -> None:
        for key, v in changes.items():
            field = getattr(m.graph.node[k], key)
            field[0] = v  # input/output slot 0
    return mutate


def _opset(domain: str, version: int) -> Callable:
    return lambda m: m.opset_import.append(helper.make_opsetid(domain, version))


def _conv_attr(name: str, value: object) -> Callable:
    return lambda m: m.graph.node[0].attribute.append(helper.make_attribute(name, value))


def _sequence_input(m: onnx.ModelProto) -> None:
    m.graph.input[0].type.Clear()
    m.graph.input[0].type.sequence_type.elem_type.tensor_type.elem_type = T.FLOAT


STRUCTURE_CASES = {
    "ssa_violation": (_node(1, output="c"), "writes 'c', which is already defined"),
    "undefined_input": (_node(1, input="nope"), "reads 'nope'"),
    "cycle": (_node(0, input="r"), "reads 'r'"),
    "empty_output_name": (_node(1, output=""), "reads 'r'"),
    "output_not_produced": (lambda m: setattr(m.graph.output[0], "name", "zzz"),
                            "graph output 'zzz' is not produced"),
    "input_twice": (lambda m: m.graph.input.append(copy.deepcopy(m.graph.input[0])),
                    "listed twice"),
    "no_outputs": (lambda m: m.graph.ClearField("output"), "the graph has no outputs"),
    "output_twice": (lambda m: m.graph.output.append(copy.deepcopy(m.graph.output[0])),
                     "listed twice"),
    "initializer_twice": (lambda m: m.graph.initializer.append(nh.from_array(np.ones(4), "b")),
                          "initializer 'b' is defined twice"),
    "empty_initializer_name": (lambda m: m.graph.initializer.append(nh.from_array(np.ones(1), "")),
                               "empty name"),
    "opset_twice": (_opset("", 13), "imports domain 'ai.onnx' twice (versions 17 and 13)"),
    "opset_twice_ai_onnx": (_opset("ai.onnx", 17), "twice"),
    "opset_negative": (lambda m: setattr(m.opset_import[0], "version", -1), "version -1"),
    "opset_huge": (lambda m: setattr(m.opset_import[0], "version", 10**9), "version 1000000000"),
    "no_default_opset": (lambda m: m.ClearField("opset_import"), "no opset import"),
    "ir_version_0": (lambda m: setattr(m, "ir_version", 0), "ir_version 0"),
    "ir_version_huge": (lambda m: setattr(m, "ir_version", 2**62), "ir_version"),
    "sequence_input": (_sequence_input, "graph input/output 'x' is a sequence"),
    "kernel_shape_float": (_conv_attr("kernel_shape", [3.0, 3.0]), "kernel_shape"),
    "group_float": (_conv_attr("group", 1.0), "group"),
    "auto_pad_not_utf8": (_conv_attr("auto_pad", b"\xff\xfe"), "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(STRUCTURE_CASES))
def test_malformed_structure(case: str) -> None:
    mutate, needle = STRUCTURE_CASES[case]
    m = base()
    mutate(m)
    expect_error(m, needle)


def _reshape_to(shape: list[int]) -> Callable:
    def mutate(m: onnx.ModelProto) -> None:
        init(m, "shp").CopyFrom(nh.from_array(np.array(shape, np.int64), "shp"))
        m.graph.output[0].type.tensor_type.ClearField("shape")
    return mutate


def _replace(name: str, value: np.ndarray, clear_out: bool = False) -> Callable:
    def mutate(m: onnx.ModelProto) -> None:
        init(m, name).CopyFrom(nh.from_array(value, name))
        if clear_out:
            m.graph.output[0].type.tensor_type.ClearField("shape")
    return mutate


def _append(node: onnx.NodeProto, out_type: int = T.FLOAT, **inits: np.ndarray) -> Callable:
    return lambda m: add(m, node, out_type, **inits)


def _n(op: str, ins: list[str], **attrs: object) -> onnx.NodeProto:
    return helper.make_node(op, ins, ["z"], name="hostile", **attrs)


def _q(scale: np.ndarray, op: str = "QuantizeLinear", **attrs: object) -> Callable:
    x = "r" if op == "QuantizeLinear" else "qw"
    out = T.UINT8 if op == "QuantizeLinear" else T.FLOAT
    inits = {"s": scale, "zp": np.zeros(scale.shape, np.uint8)}
    if op == "DequantizeLinear":
        inits["qw"] = np.ones((scale.size, 2), np.uint8)
    return _append(_n(op, [x, "s", "zp"], **attrs), out, **inits)


def _qlinearconv(bias_len: int = 2, w_scale: float = 0.5) -> Callable:
    def mutate(m: onnx.ModelProto) -> None:
        add(m, helper.make_node("QuantizeLinear", ["r", "s", "z8"], ["q"]), T.UINT8,
            s=np.array(0.5, np.float32), z8=np.array(0, np.uint8))
        m.graph.output.pop()
        add(m, _n("QLinearConv", ["q", "s", "z8", "qw", "ws", "z8", "s", "z8", "qb"]), T.UINT8,
            qw=np.ones((2, 4, 1, 1), np.uint8), ws=np.array(w_scale, np.float32),
            qb=np.ones(bias_len, np.int32))
    return mutate


F32, I64, I32 = np.float32, np.int64, np.int32


def _op(op: str, ins: list[str], out: int = T.FLOAT, attrs: dict | None = None,
        **inits: np.ndarray) -> Callable:
    """Append node `op`(ins) -> z with attributes `attrs` and new initializers."""
    return _append(_n(op, ins, **(attrs or {})), out, **inits)


def _f(*v: float) -> np.ndarray:
    return np.array(v if len(v) != 1 else v[0], F32)


def _i(*v: int) -> np.ndarray:
    return np.array(v if len(v) != 1 else v[0], I64)


OP_CASES = {
    "reshape_count": (_reshape_to([2, 100]),
                      "has 256 elements but the output shape [2, 100] has 200"),
    "conv_bias_length": (_replace("b", np.ones(5, F32)), "bias 'b' has shape [5]; expected [4]"),
    "conv_weight_channels": (_replace("w", np.ones((4, 2, 3, 3), F32)),
                             "does not match input channels 3"),
    "conv_weight_rank": (_replace("w", np.ones((4, 3, 3), F32)), "weight tensor"),
    "conv_kernel_too_big": (_op("Conv", ["r", "w9"], w9=np.ones((2, 4, 9, 9), F32)),
                            "larger than the padded input"),
    "conv_kernel_shape_mismatch": (_op("Conv", ["r", "w1"], attrs={"kernel_shape": [3, 3]},
                                       w1=np.ones((2, 4, 1, 1), F32)), "kernel_shape"),
    "conv_transpose_bias": (_op("ConvTranspose", ["r", "wt", "bt"], attrs={"strides": [2, 2]},
                                wt=np.ones((4, 2, 2, 2), F32), bt=np.ones(3, F32)),
                            "expected [2]"),
    "qlinearconv_bias": (_qlinearconv(bias_len=5), "bias 'qb' has shape [5]; expected [2]"),
    "qlinearconv_negative_scale": (_qlinearconv(w_scale=-0.5), "scale 'ws' holds -0.5"),
    "maxpool_window_too_big": (_op("MaxPool", ["r"], attrs={"kernel_shape": [9, 9]}),
                               "larger than"),
    "quantize_zero_scale": (_q(_f(0.0)), "scale 's' holds 0.0"),
    "quantize_nan_scale": (_q(_f(np.nan)), "holds nan"),
    "dequantize_negative_scale": (_q(_f(-0.5), "DequantizeLinear"), "holds -0.5"),
    "dequantize_inf_channel_scale": (_q(_f(0.5, np.inf), "DequantizeLinear", axis=0), "holds inf"),
    "dequantize_int32_zero_point": (_op("DequantizeLinear", ["qi", "s", "zi"], qi=np.ones(3, I32),
                                        s=_f(0.5), zi=np.array(7, I32)), "expected 0"),
    "resize_nan_scale": (_op("Resize", ["r", "", "sc"], sc=_f(1, 1, np.nan, 2)), "scale nan"),
    "resize_inf_scale": (_op("Resize", ["r", "", "sc"], sc=_f(1, 1, np.inf, 2)), "scale inf"),
    "resize_negative_size": (_op("Resize", ["r", "", "", "sz"], sz=_i(1, 4, -8, 8)), "size -8"),
    "upsample_nan_scale": (_op("Upsample", ["r", "sc"], sc=_f(1, 1, np.nan, 2)), "scale nan"),
    "expand_negative_shape": (_op("Expand", ["b", "es"], es=_i(-3, 4)), "holds -3"),
    "tile_negative": (_op("Tile", ["b", "rep"], rep=_i(-2)), "holds -2"),
    "range_zero_delta": (_op("Range", ["r0", "r1", "r0"], T.INT64, r0=_i(0), r1=_i(5)),
                         "delta is 0"),
    "range_nan": (_op("Range", ["f0", "f1", "f2"], f0=_f(0), f1=_f(np.nan), f2=_f(1)),
                  "not finite"),
    "range_huge": (_op("Range", ["r0", "r1", "r2"], T.INT64, r0=_i(0), r1=_i(2**40), r2=_i(1)),
                   "1099511627776"),
    "constant_of_shape_huge": (_op("ConstantOfShape", ["hs"], hs=_i(2**20, 2**20)),
                               "bytes per tensor"),
    "expand_huge": (_op("Expand", ["one", "hs"], one=np.ones(1, F32), hs=_i(2**15, 2**15, 4)),
                    "bytes per tensor"),
}


def _big_pads(m: onnx.ModelProto) -> None:
    m.graph.node[0].ClearField("attribute")
    m.graph.node[0].attribute.append(helper.make_attribute("pads", [30000] * 4))
    m.graph.output[0].type.tensor_type.ClearField("shape")


OP_CASES["activation_too_big"] = (_big_pads, "value 'c' of shape [1, 4, 60006, 60006]")


@pytest.mark.parametrize("case", sorted(OP_CASES))
def test_invalid_operands(case: str) -> None:
    mutate, needle = OP_CASES[case]
    m = base()
    mutate(m)
    expect_error(m, needle)


def test_constant_loop_without_bounded_trip_count() -> None:
    """A Loop of constants would be run by the reference evaluator at build time: 2**62
    iterations must not hang the build."""
    def vi(name: str, elem: int) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, elem, [])

    body = helper.make_graph(
        [helper.make_node("Identity", ["c_in"], ["c_out"]),
         helper.make_node("Add", ["v_in", "one"], ["v_out"])], "body",
        [vi("i", T.INT64), vi("c_in", T.BOOL), vi("v_in", T.FLOAT)],
        [vi("c_out", T.BOOL), vi("v_out", T.FLOAT)], [nh.from_array(_f(1.0), "one")])
    m = base()
    m.graph.initializer.extend([nh.from_array(_i(2**62), "M"), nh.from_array(_f(0.0), "v0"),
                                nh.from_array(np.array(True), "cond")])
    m.graph.node.append(helper.make_node("Loop", ["M", "cond", "v0"], ["z"], body=body))
    m.graph.output.append(helper.make_tensor_value_info("z", T.FLOAT, []))
    expect_error(m, "Loop", "trip count")


# ---- onnx's C++ passes must not take edgec down -----------------------------------------------
def test_attributes_that_crash_onnx_shape_inference() -> None:
    """Found by fuzzing: onnx's shape inference segfaults on LayerNormalization axis=2**31 and
    aborts on a Split whose num_outputs disagrees with its outputs."""
    m = base()
    add(m, _n("LayerNormalization", ["r", "lw"], axis=2**31), lw=np.ones(8, np.float32))
    expect_error(m, "axis 2147483648 is out of range")
    m = base()
    m.graph.node.append(helper.make_node("Split", ["r"], ["s1", "s2", "s3"], axis=1, num_outputs=1))
    m.graph.output.append(helper.make_tensor_value_info("s1", T.FLOAT, None))
    expect_error(m, "num_outputs=1 but the node has 3 outputs")


@pytest.mark.skipif(not sandbox._use_fork(), reason="the sandbox forks on Linux only")
def test_a_crash_in_an_onnx_pass_is_a_model_error() -> None:
    import os

    from edgec.importer.sandbox import isolated

    with pytest.raises(ModelError, match=r"crashed \(SIGABRT\)"):
        isolated(lambda m: os.abort(), base(), "a test pass")
    def fails(m: onnx.ModelProto) -> onnx.ModelProto:
        raise ValueError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        isolated(fails, base(), "a test pass")
    assert isolated(lambda m: m, base(), "a test pass").graph.name == "g"


def test_mismatched_broadcast_is_refused() -> None:
    """Found by fuzzing: a Mean whose inputs do not broadcast reached numpy in the converter."""
    m = base()
    add(m, _n("Mean", ["r", "v"]), v=np.ones(3, np.float32))
    expect_error(m, "Mean")


def test_huge_constant_matmul_is_compiled_not_evaluated_at_build_time() -> None:
    """A constant MatMul of 2**33 multiply-adds would keep the reference evaluator busy for
    minutes: the importer leaves it to the compiler (shapes stay within the limits)."""
    m = base()
    big = np.ones((2048, 2048), np.float32)
    add(m, _n("MatMul", ["ma", "mb"]), ma=big, mb=big)
    g = import_model(m)
    assert any(n.op == "MatMul" for n in g.nodes)


@pytest.mark.parametrize("op,bad", [("Conv", np.inf), ("Conv", np.nan), ("Gemm", -np.inf)])
def test_non_finite_weights_refused(op: str, bad: float) -> None:
    w = np.ones((2, 2, 1, 1) if op == "Conv" else (2, 2), np.float32)
    w.flat[1] = bad
    node = helper.make_node(op, ["x", "w"], ["y"])
    shape = [1, 2, 3, 3] if op == "Conv" else [1, 2]
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", T.FLOAT, shape)],
                         [helper.make_tensor_value_info("y", T.FLOAT, None)], [nh.from_array(w, "w")])
    with pytest.raises(ModelError, match="NaN or Inf"):
        import_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))

"""Seed models for the fuzzer: tiny (a few nodes, tensors of a few hundred bytes), each valid
ONNX that edgec builds on the host in well under a second and that onnxruntime runs.

Every seed is made with onnx.helper from a numpy Generator, so a seed is a pure function of its
name and the integer it is given."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper, numpy_helper

OPSET = 17


@dataclass
class Seed:
    name: str
    model: onnx.ModelProto
    tol: float = 1e-4  # relative tolerance against onnxruntime (see oracle.close)


def _w(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[tuple[str, int, list[int]]],
    outputs: list[tuple[str, int, list[int]]],
    inits: dict[str, np.ndarray],
    opset: int = OPSET,
    functions: list[onnx.FunctionProto] | None = None,
    extra_opsets: list[onnx.OperatorSetIdProto] | None = None,
) -> onnx.ModelProto:
    g = helper.make_graph(
        nodes,
        "seed",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    m = helper.make_model(
        g,
        opset_imports=[helper.make_opsetid("", opset), *(extra_opsets or [])],
        functions=functions or [],
    )
    m.ir_version = 8
    m.producer_name = "edgec-fuzz"
    return m


def conv_relu_pool(rng: np.random.Generator) -> onnx.ModelProto:
    nodes = [
        helper.make_node(
            "Conv",
            ["x", "w", "b"],
            ["c"],
            name="conv",
            pads=[1, 1, 1, 1],
            strides=[1, 1],
            kernel_shape=[3, 3],
            dilations=[1, 1],
            group=1,
        ),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["y"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
    ]
    return _model(
        nodes,
        [("x", T.FLOAT, [1, 2, 6, 6])],
        [("y", T.FLOAT, [1, 3, 3, 3])],
        {"w": _w(rng, 3, 2, 3, 3), "b": _w(rng, 3)},
    )


def matmul_softmax(rng: np.random.Generator) -> onnx.ModelProto:
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
        helper.make_node("Add", ["m", "b"], ["a"], name="add"),
        helper.make_node("Softmax", ["a"], ["y"], name="softmax", axis=-1),
    ]
    return _model(
        nodes,
        [("x", T.FLOAT, [2, 8])],
        [("y", T.FLOAT, [2, 5])],
        {"w": _w(rng, 8, 5), "b": _w(rng, 5)},
    )


def reshape_transpose_concat(rng: np.random.Generator) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"], name="reshape"),
        helper.make_node("Transpose", ["r"], ["t"], name="transpose", perm=[0, 2, 1]),
        helper.make_node("Concat", ["t", "k"], ["y"], name="concat", axis=1),
    ]
    return _model(
        nodes,
        [("x", T.FLOAT, [1, 12])],
        [("y", T.FLOAT, [1, 6, 3])],
        {"shape": np.array([1, 3, 4], np.int64), "k": _w(rng, 1, 2, 3)},
    )


def qdq_conv(rng: np.random.Generator) -> onnx.ModelProto:
    w = rng.integers(-100, 100, size=(4, 2, 3, 3)).astype(np.int8)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="qx"),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"], name="dqx"),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], name="dqw"),
        helper.make_node("Conv", ["xd", "wd"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("QuantizeLinear", ["c", "ys", "yz"], ["yq"], name="qy"),
        helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"], name="dqy"),
    ]
    inits = {
        "xs": np.array(0.02, np.float32),
        "xz": np.array(128, np.uint8),
        "wq": w,
        "ws": np.array(0.01, np.float32),
        "wz": np.array(0, np.int8),
        "ys": np.array(0.05, np.float32),
        "yz": np.array(128, np.uint8),
    }
    return _model(nodes, [("x", T.FLOAT, [1, 2, 5, 5])], [("y", T.FLOAT, [1, 4, 5, 5])], inits)


def gru(rng: np.random.Generator) -> onnx.ModelProto:
    hidden, inp = 4, 3
    nodes = [
        helper.make_node(
            "GRU",
            ["x", "w", "r", "b"],
            ["", "y"],
            name="gru",
            hidden_size=hidden,
            linear_before_reset=1,
        )
    ]
    return _model(
        nodes,
        [("x", T.FLOAT, [2, 1, inp])],
        [("y", T.FLOAT, [1, 1, hidden])],
        {
            "w": _w(rng, 1, 3 * hidden, inp, scale=0.5),
            "r": _w(rng, 1, 3 * hidden, hidden, scale=0.5),
            "b": _w(rng, 1, 6 * hidden, scale=0.1),
        },
    )


def gather(rng: np.random.Generator) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Gather", ["x", "idx"], ["g"], name="gather", axis=1),
        helper.make_node("Mul", ["g", "s"], ["y"], name="mul"),
    ]
    return _model(
        nodes,
        [("x", T.FLOAT, [2, 6])],
        [("y", T.FLOAT, [2, 3])],
        {"idx": np.array([5, 0, -2], np.int64), "s": _w(rng, 3)},
    )


def resize(rng: np.random.Generator) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Resize", ["x", "", "scales"], ["r"], name="resize", mode="nearest"),
        helper.make_node("Add", ["r", "b"], ["y"], name="add"),
    ]
    return _model(
        nodes,
        [("x", T.FLOAT, [1, 2, 3, 3])],
        [("y", T.FLOAT, [1, 2, 6, 6])],
        {"scales": np.array([1, 1, 2, 2], np.float32), "b": _w(rng, 1, 2, 1, 1)},
    )


def local_function(rng: np.random.Generator) -> onnx.ModelProto:
    body = [
        helper.make_node("Mul", ["a", "a"], ["sq"]),
        helper.make_node("Add", ["sq", "a"], ["o"]),
    ]
    fn = helper.make_function(
        "local", "SqPlus", ["a"], ["o"], body, [helper.make_opsetid("", OPSET)]
    )
    nodes = [
        helper.make_node("SqPlus", ["x"], ["f"], name="call", domain="local"),
        helper.make_node("Mul", ["f", "s"], ["y"], name="scale"),
    ]
    return _model(
        nodes,
        [("x", T.FLOAT, [3, 4])],
        [("y", T.FLOAT, [3, 4])],
        {"s": _w(rng, 4)},
        functions=[fn],
        extra_opsets=[helper.make_opsetid("local", 1)],
    )


SEEDS: dict[str, tuple[Callable[[np.random.Generator], onnx.ModelProto], float]] = {
    "conv_relu_pool": (conv_relu_pool, 1e-4),
    "matmul_softmax": (matmul_softmax, 1e-4),
    "reshape_transpose_concat": (reshape_transpose_concat, 1e-4),
    "qdq_conv": (qdq_conv, 0.051),  # one quantization step of y (scale 0.05)
    "gru": (gru, 1e-4),
    "gather": (gather, 1e-4),
    "resize": (resize, 1e-4),
    "local_function": (local_function, 1e-4),
}


def make_seed(name: str, seed: int = 0) -> Seed:
    fn, tol = SEEDS[name]
    return Seed(name, fn(np.random.default_rng(seed)), tol)

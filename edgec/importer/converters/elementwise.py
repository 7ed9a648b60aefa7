"""Elementwise ops with numpy broadcasting. The IR keeps their ONNX names; attributes that
are inputs in newer opsets (Clip min/max) become attributes."""

from __future__ import annotations

import numpy as np
import onnx

from edgec.errors import ModelError
from edgec.importer.context import ConvertContext
from edgec.importer.registry import converter
from edgec.importer.validate import where

UNARY = ["Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Neg", "Abs", "Reciprocal", "Erf",
         "Floor", "Ceil", "Not", "Softplus", "Softsign", "Sign", "Round", "Sin", "Cos", "Mish"]
BINARY = ["Add", "Sub", "Mul", "Div", "Pow", "PRelu", "Equal", "Less", "Greater",
          "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Mod", "BitShift"]


def check_broadcast(cx: ConvertContext, node: onnx.NodeProto, names: list[str]) -> None:
    """The inputs broadcast (numpy rules) to the output's inferred shape: kernels index every
    input by the output's coordinates, so any other shape would read out of bounds."""
    shapes = [tuple(cx.shape(n)) for n in names]
    try:
        got = np.broadcast_shapes(*shapes)
    except ValueError:
        raise ModelError(f"{where(node)}: input shapes {[list(s) for s in shapes]} do not "
                         "broadcast together") from None
    if tuple(got) != tuple(cx.shape(node.output[0])):
        raise ModelError(f"{where(node)}: inputs broadcast to {list(got)} but the output has shape "
                         f"{list(cx.shape(node.output[0]))}")


@converter(*UNARY)
def convert_unary(cx: ConvertContext, node: onnx.NodeProto) -> None:
    cx.emit(node.op_type, [node.input[0]], [node.output[0]], node.name)


@converter(*BINARY)
def convert_binary(cx: ConvertContext, node: onnx.NodeProto) -> None:
    attrs = cx.attrs(node)
    extra = {}
    if node.op_type == "Mod":
        extra["fmod"] = int(attrs.get("fmod", 0))
    if node.op_type == "BitShift":
        extra["direction"] = attrs["direction"]
    a, b = node.input[0], node.input[1]
    if cx.opset < 7 and attrs.get("broadcast"):
        raise NotImplementedError  # opsets below 7 are rejected earlier
    check_broadcast(cx, node, [a, b])
    cx.emit(node.op_type, [a, b], [node.output[0]], node.name, **extra)


@converter("Max", "Min", "Sum", "Mean")
def convert_variadic(cx: ConvertContext, node: onnx.NodeProto) -> None:
    """Variadic ops become a chain of binary ones (Mean = Sum * 1/n)."""
    op = {"Max": "Max", "Min": "Min", "Sum": "Add", "Mean": "Add"}[node.op_type]
    ins = [i for i in node.input if i]
    out = node.output[0]
    out_v = cx.value(out)
    check_broadcast(cx, node, ins)
    if len(ins) == 1 and node.op_type != "Mean":
        cx.emit("Reshape", [ins[0]], [out], node.name)
        return
    acc = ins[0]
    for k, nxt in enumerate(ins[1:]):
        last = k == len(ins) - 2 and node.op_type != "Mean"
        dst = out if last else cx.temp(out, out_v.dtype, np.broadcast_shapes(cx.shape(acc), cx.shape(nxt)))
        cx.emit(op, [acc, nxt], [dst], node.name)
        acc = dst
    if node.op_type == "Mean":
        scale = cx.add_const(f"{out}_inv_n", np.array(1.0 / len(ins), dtype=out_v.dtype))
        cx.emit("Mul", [acc, scale], [out], node.name)


@converter("LeakyRelu", "Elu", "Selu", "Celu", "ThresholdedRelu", "HardSigmoid", "HardSwish", "Gelu", "Swish")
def convert_param_activation(cx: ConvertContext, node: onnx.NodeProto) -> None:
    a = cx.attrs(node)
    defaults = {"LeakyRelu": {"alpha": 0.01}, "Elu": {"alpha": 1.0}, "Celu": {"alpha": 1.0},
                "Selu": {"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875},
                "ThresholdedRelu": {"alpha": 1.0}, "HardSigmoid": {"alpha": 0.2, "beta": 0.5},
                "HardSwish": {}, "Gelu": {"approximate": "none"}, "Swish": {"alpha": 1.0}}[node.op_type]
    attrs = {k: a.get(k, v) for k, v in defaults.items()}
    attrs = {k: (float(v) if not isinstance(v, str) else v) for k, v in attrs.items()}
    cx.emit(node.op_type, [node.input[0]], [node.output[0]], node.name, **attrs)


@converter("Clip")
def convert_clip(cx: ConvertContext, node: onnx.NodeProto) -> None:
    a = cx.attrs(node)
    dtype = cx.value(node.input[0]).dtype
    info = np.finfo(dtype) if np.issubdtype(dtype, np.floating) else np.iinfo(dtype)
    if cx.opset < 11:
        lo, hi = a.get("min", float(info.min)), a.get("max", float(info.max))
    else:
        lo_c = cx.const(cx.input(node, 1))
        hi_c = cx.const(cx.input(node, 2))
        for k in (1, 2):
            if cx.input(node, k) and cx.value(cx.input(node, k)).size != 1:
                raise ModelError(f"{where(node)}: min/max must be scalars, got shape "
                                 f"{list(cx.shape(cx.input(node, k)))}")
        if (cx.input(node, 1) and lo_c is None) or (cx.input(node, 2) and hi_c is None):
            _clip_runtime(cx, node)  # a bound computed at run time (log-mel: ReduceMax(x) - 80)
            return
        lo = float(lo_c.reshape(-1)[0]) if lo_c is not None else float(info.min)
        hi = float(hi_c.reshape(-1)[0]) if hi_c is not None else float(info.max)
    cx.emit("Clip", [node.input[0]], [node.output[0]], node.name, min=float(lo), max=float(hi))


def _clip_runtime(cx: ConvertContext, node: onnx.NodeProto) -> None:
    """Clip with a bound known only at run time: min(max(x, lo), hi), as onnxruntime computes it
    (hi wins when lo > hi; NaN in x stays NaN)."""
    x, out = node.input[0], node.output[0]
    acc = x
    bounds = [(op, cx.input(node, k)) for op, k in (("Max", 1), ("Min", 2)) if cx.input(node, k)]
    for j, (op, bound) in enumerate(bounds):
        if cx.shape(bound) != ():  # [1] -> a scalar, so broadcasting keeps x's shape
            scalar = cx.temp(f"{bound}_scalar", cx.value(bound).dtype, ())
            cx.emit("Reshape", [bound], [scalar], node.name)
            bound = scalar
        dst = out if j == len(bounds) - 1 else cx.temp(f"{out}_{op.lower()}", cx.value(x).dtype, cx.shape(x))
        cx.emit(op, [acc, bound], [dst], node.name, clip=True)
        acc = dst


@converter("Where")
def convert_where(cx: ConvertContext, node: onnx.NodeProto) -> None:
    check_broadcast(cx, node, list(node.input[:3]))
    cx.emit("Where", list(node.input[:3]), [node.output[0]], node.name)


@converter("Cast")
def convert_cast(cx: ConvertContext, node: onnx.NodeProto) -> None:
    to = cx.value(node.output[0]).dtype
    cx.emit("Cast", [node.input[0]], [node.output[0]], node.name, to=np.dtype(to).name)


@converter("Identity", "Dropout")
def convert_identity(cx: ConvertContext, node: onnx.NodeProto) -> None:
    """Identity and inference-mode Dropout are aliases: no kernel, no copy."""
    if node.op_type == "Dropout":
        training = cx.const(cx.input(node, 2))
        ratio = cx.const(cx.input(node, 1)) if cx.input(node, 1) else np.array(0.5)
        # training mode with ratio 0 drops nothing: deterministic, the same as inference
        zero_ratio = ratio is not None and float(np.asarray(ratio).reshape(-1)[0]) == 0.0
        if cx.input(node, 2) and (training is None or bool(np.asarray(training).reshape(-1)[0])) and not zero_ratio:
            raise ModelError(f"{where(node)}: training mode (random masks) is not supported; "
                             "export the model for inference")
    if node.op_type == "Dropout" and len(node.output) > 1 and node.output[1]:
        # The mask output of inference Dropout is all ones.
        mask = np.ones(cx.shape(node.output[1]), dtype=bool)
        name = cx.add_const(node.output[1] + "_ones", mask)
        cx.emit("Reshape", [name], [node.output[1]], node.name)
    cx.emit("Reshape", [node.input[0]], [node.output[0]], node.name)

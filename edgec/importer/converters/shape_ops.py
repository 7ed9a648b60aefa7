"""Ops that only reinterpret a buffer's shape. They become `Reshape` aliases (no kernel)."""

from __future__ import annotations

import math

import onnx

from edgec.errors import ModelError
from edgec.importer.context import ConvertContext
from edgec.importer.registry import converter
from edgec.importer.validate import where


@converter("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def convert_reshape(cx: ConvertContext, node: onnx.NodeProto) -> None:
    # Shapes were inferred (and shape inputs folded) before conversion; the output value already
    # carries the static shape, so all four are the same row-major reinterpretation. ONNX shape
    # inference does not check that a Reshape keeps the element count: a reinterpretation
    # that grows would read past its input, so it is refused here.
    xs, ys = cx.shape(node.input[0]), cx.shape(node.output[0])
    if math.prod(xs) != math.prod(ys):
        raise ModelError(f"{where(node)}: input shape {list(xs)} has {math.prod(xs)} elements but "
                         f"the output shape {list(ys)} has {math.prod(ys)}; a {node.op_type} must "
                         "keep the element count")
    cx.emit("Reshape", [node.input[0]], [node.output[0]], node.name)

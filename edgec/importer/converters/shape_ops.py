"""Ops that only reinterpret a buffer's shape. They become `Reshape` aliases (no kernel)."""

from __future__ import annotations

import onnx

from edgec.importer.context import ConvertContext
from edgec.importer.registry import converter


@converter("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def convert_reshape(cx: ConvertContext, node: onnx.NodeProto) -> None:
    # Shapes were inferred (and shape inputs folded) before conversion; the output value already
    # carries the static shape, so all four are the same row-major reinterpretation.
    cx.emit("Reshape", [node.input[0]], [node.output[0]], node.name)

"""What a converter sees: attributes, static shapes, constants, and a way to emit IR nodes."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper

from edgec.errors import ModelError
from edgec.importer.validate import show, where
from edgec.ir.graph import Graph, Node, Value


class ConvertContext:
    def __init__(self, graph: Graph, opset: int):
        self.graph = graph
        self.opset = opset
        # LSTM outputs whose state is re-quantized each step (edgec/importer/contrib/dynamic.py)
        self.quantized_state: set[str] = set()

    # ---- reading the ONNX node -------------------------------------------------------
    @staticmethod
    def attrs(node: onnx.NodeProto) -> dict[str, Any]:
        out = {}
        for a in node.attribute:
            v = helper.get_attribute_value(a)
            try:  # string attributes are bytes in the protobuf: text must be UTF-8
                if isinstance(v, bytes):
                    v = v.decode()
                elif isinstance(v, list) and v and isinstance(v[0], bytes):
                    v = [s.decode() for s in v]
            except UnicodeDecodeError:
                raise ModelError(f"{where(node)}: attribute {show(a.name)} is not UTF-8 "
                                 "text") from None
            if isinstance(v, onnx.TensorProto):
                v = onnx.numpy_helper.to_array(v)  # checked with the model's other tensors
            out[a.name] = v
        return out

    def value(self, name: str) -> Value:
        return self.graph.values[name]

    def shape(self, name: str) -> tuple[int, ...]:
        return self.graph.values[name].shape

    def const(self, name: str) -> np.ndarray | None:
        if not name:
            return None
        v = self.graph.values.get(name)
        return None if v is None else v.data

    def require_const(self, node: onnx.NodeProto, index: int, what: str) -> np.ndarray:
        name = node.input[index] if index < len(node.input) else ""
        data = self.const(name)
        if data is None:
            raise ModelError(f"{where(node)}: {what} (input {index}) must be a "
                             "constant; edgec compiles static graphs")
        return data

    @staticmethod
    def input(node: onnx.NodeProto, index: int) -> str:
        return node.input[index] if index < len(node.input) else ""

    # ---- emitting IR -----------------------------------------------------------------
    def emit(self, op: str, inputs: list[str], outputs: list[str], name: str = "", **attrs: Any) -> None:
        self.graph.nodes.append(Node(op, list(inputs), list(outputs), attrs, name))

    def add_const(self, hint: str, data: np.ndarray) -> str:
        return self.graph.add_const(hint, data)

    def temp(self, hint: str, dtype: np.dtype, shape: tuple[int, ...]) -> str:
        """A fresh intermediate value for converters that expand into several IR nodes."""
        name = self.graph.fresh(hint)
        self.graph.values[name] = Value(name, np.dtype(dtype), tuple(int(d) for d in shape))
        return name

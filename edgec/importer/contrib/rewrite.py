"""The rewrite framework of edgec/importer/contrib: what one rewrite gets (`Rewrite`) and the
registry of rewrites by op name (`@expands`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgec.errors import ModelError
from edgec.importer.validate import where

DOMAIN = "com.microsoft"
# Outputs of LSTMs rewritten from DynamicQuantizeLSTM, for the LSTM converter (a model property
# only edgec writes: import_model drops one that arrives with the model).
QUANTIZED_STATE_KEY = "edgec.contrib.quantized_lstm_state"


class Rewrite:
    """What one rewrite gets: the node, its attributes, fresh names and a place for
    constants. Names derive from the node's first output (unique in the model)."""

    def __init__(self, node: onnx.NodeProto, opset: int, quantized_state: list[str] | None = None,
                 ranks: dict[str, int] | None = None):
        self.node = node
        self.opset = opset
        self.ranks = ranks or {}
        self.quantized_state = quantized_state if quantized_state is not None else []
        self.attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._base = next((o for o in node.output if o), node.name or "contrib") + "__ms_"
        self._count = 0

    def name(self, hint: str = "t") -> str:
        self._count += 1
        return f"{self._base}{hint}{self._count}"

    def const(self, value: object, dtype: object = np.float32, hint: str = "c") -> str:
        n = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), n))
        return n

    def op(self, op_type: str, inputs: list[str], outputs: list[str] | None = None, **attrs: object) -> str:
        """Emit one standard node; returns its (first) output name."""
        outs = outputs or [self.name(op_type.lower())]
        self.nodes.append(helper.make_node(op_type, inputs, outs, **attrs))
        return outs[0]

    def rank(self, name: str) -> int | None:
        """The rank of `name` from a best-effort shape inference before the rewrite; None when
        unknown (e.g. the output of another com.microsoft op)."""
        return self.ranks.get(name)

    def input(self, k: int) -> str:
        """Input k, or "" when absent."""
        return self.node.input[k] if len(self.node.input) > k else ""

    def output(self, k: int) -> str:
        return self.node.output[k] if len(self.node.output) > k else ""

    def fail(self, why: str) -> ModelError:
        return ModelError(f"{where(self.node)}: {why}")


EXPANSIONS: dict[str, Callable[[Rewrite], None]] = {}


# op -> indices of the inputs it cannot do without (checked before the rewrite runs, so a
# malformed node is named in the message instead of failing shape inference of its rewrite)
REQUIRED: dict[str, tuple[int, ...]] = {}


def expands(*ops: str, required: tuple[int, ...] = (0,)) -> Callable:
    def register(fn: Callable[[Rewrite], None]) -> Callable[[Rewrite], None]:
        for op in ops:
            EXPANSIONS[op] = fn
            REQUIRED[op] = required
        return fn
    return register


def check_required(node: onnx.NodeProto) -> None:
    missing = [k for k in REQUIRED.get(node.op_type, ()) if len(node.input) <= k or not node.input[k]]
    if missing:
        raise ModelError(f"{where(node)}: {node.domain}.{node.op_type} is missing input(s) {missing} "
                         f"(it has {len(node.input)})")



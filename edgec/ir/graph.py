"""Graph, Node and Value.

The IR keeps ONNX op names and semantics (so `onnx.reference` stays the oracle), but every
attribute is normalized by the importer: no auto_pad, no optional-input games, static shapes
everywhere. Fusion passes add attributes (e.g. ``activation``) rather than new op spellings.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Value:
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    data: np.ndarray | None = None  # set for constants (weights)
    # A constant made by DequantizeLinear at import: its integer form, kept for the qdq pass.
    quant: Any = None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize


@dataclass
class Node:
    op: str
    inputs: list[str]  # "" marks an absent optional input
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""


@dataclass
class Graph:
    name: str
    values: dict[str, Value]
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    _ids: itertools.count = field(default_factory=itertools.count, repr=False)

    def copy(self) -> Graph:
        """Nodes and the value table copied (values themselves are shared and never mutated),
        so each target's passes rewrite their own graph. The fresh-name counter restarts."""
        return Graph(self.name, dict(self.values),
                     [Node(n.op, list(n.inputs), list(n.outputs), dict(n.attrs), n.name) for n in self.nodes],
                     list(self.inputs), list(self.outputs))

    def fresh(self, hint: str) -> str:
        """A value name not used yet."""
        while True:
            name = f"{hint}__{next(self._ids)}"
            if name not in self.values:
                return name

    def add_const(self, hint: str, data: np.ndarray) -> str:
        name = self.fresh(hint)
        data = np.asarray(data, order="C")
        self.values[name] = Value(name, data.dtype, tuple(data.shape), data)
        return name

    def producers(self) -> dict[str, Node]:
        return {o: n for n in self.nodes for o in n.outputs}

    def consumers(self) -> dict[str, list[Node]]:
        uses: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in n.inputs:
                if i:
                    uses.setdefault(i, []).append(n)
        return uses

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for n in self.nodes:
            counts[n.op] = counts.get(n.op, 0) + 1
        return dict(sorted(counts.items()))

    def weight_bytes(self) -> int:
        used = {i for n in self.nodes for i in n.inputs}
        return sum(v.nbytes for v in self.values.values() if v.is_const and v.name in used)

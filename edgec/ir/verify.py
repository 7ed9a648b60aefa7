"""Structural checks run between passes: every input defined before use, shapes static."""

from __future__ import annotations

from edgec.errors import ModelError
from edgec.ir.graph import Graph


def verify(g: Graph) -> None:
    defined = set(g.inputs) | {n for n, v in g.values.items() if v.is_const}
    for node in g.nodes:
        for i in node.inputs:
            if i and i not in defined:
                raise ModelError(f"IR error: {node.op} node {node.name!r} uses {i!r} before it is defined")
        for o in node.outputs:
            if o in defined:
                raise ModelError(f"IR error: value {o!r} is defined twice")
            v = g.values.get(o)
            if v is None or any((not isinstance(d, int)) or d < 0 for d in v.shape):
                raise ModelError(f"IR error: value {o!r} has no static shape")
            defined.add(o)
    for o in g.outputs:
        if o not in defined:
            raise ModelError(f"IR error: graph output {o!r} is never produced")

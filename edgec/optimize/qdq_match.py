"""What the QDQ fusions of pass `fold-qdq` (edgec/optimize/qdq.py, qdq_lut.py) match on: per-tensor
DequantizeLinear inputs, the QuantizeLinear that ends a pattern (through a fused Relu/Clip), and
the integer form of constant weights."""

from __future__ import annotations

import numpy as np

from edgec.ir.graph import Graph, Node

_ACTS = ("Relu", "Clip")


def _scalar(g: Graph, name: str) -> float | int | None:
    v = g.values.get(name) if name else None
    if v is None or not v.is_const or v.size != 1:
        return None
    return v.data.reshape(-1)[0].item()


def _dq_input(g: Graph, prod: dict[str, Node], name: str) -> Node | None:
    """The DequantizeLinear producing `name` at run time, if it is per tensor with constants."""
    n = prod.get(name)
    if n is None or n.op != "DequantizeLinear" or n.attrs.get("axis") is not None:
        return None
    if _scalar(g, n.inputs[1]) is None or (len(n.inputs) > 2 and n.inputs[2] and _scalar(g, n.inputs[2]) is None):
        return None
    if np.dtype(g.values[n.inputs[0]].dtype).name not in ("uint8", "int8"):
        return None
    return n


def _params(n: Node) -> tuple[str, str, str]:
    """(quantized tensor, scale, zero point) of a DQ or Q node."""
    return n.inputs[0], n.inputs[1], n.inputs[2] if len(n.inputs) > 2 else ""


def _same_params(g: Graph, a: Node, b: Node) -> bool:
    za, zb = _scalar(g, _params(a)[2]) or 0, _scalar(g, _params(b)[2]) or 0
    return (np.float32(_scalar(g, a.inputs[1])) == np.float32(_scalar(g, b.inputs[1])) and za == zb
            and g.values[a.inputs[0]].dtype == g.values[b.outputs[0]].dtype)


class _Fold:
    def __init__(self, g: Graph):
        self.g = g
        self.prod = g.producers()
        self.uses = g.consumers()
        self.removed: set[int] = set()
        self.quant = [v for v in g.values.values() if v.quant is not None]

    def only_user(self, name: str) -> Node | None:
        users = self.uses.get(name, [])
        if name in self.g.outputs or len(users) != 1 or id(users[0]) in self.removed:
            return None
        return users[0]

    def sink(self, y: str) -> tuple[Node, list[Node], int | None, int | None] | None:
        """The Q that ends the pattern at `y` (through at most one Relu/Clip): (Q, nodes to
        remove, qmin, qmax) with the clamp the activation implies."""
        user = self.only_user(y)
        acts: list[Node] = []
        lo = hi = None
        if user is not None and user.op in _ACTS:
            acts.append(user)
            user = self.only_user(user.outputs[0])
        if user is None or user.op != "QuantizeLinear" or user.attrs.get("axis") is not None:
            return None
        s, z = _scalar(self.g, user.inputs[1]), _scalar(self.g, _params(user)[2]) or 0
        if s is None or (len(user.inputs) > 2 and user.inputs[2] and _scalar(self.g, user.inputs[2]) is None):
            return None
        for a in acts:
            if a.op == "Relu":
                lo = z
            else:  # Clip carries its bounds as attributes in the IR
                lo, hi = _quantize(a.attrs["min"], s, z), _quantize(a.attrs["max"], s, z)
        return user, acts, lo, hi

    def weight(self, name: str) -> dict | None:
        """Integer form of a constant: its own, or that of the constant it was copied or
        transposed from by a converter (Gemm stores B transposed)."""
        v = self.g.values.get(name)
        if v is None or not v.is_const:
            return None
        if v.quant is not None:
            return v.quant
        for src in self.quant:
            if src.data.shape == v.data.shape and np.array_equal(src.data, v.data):
                return src.quant
            if src.data.ndim == 2 and src.data.shape[::-1] == v.data.shape and np.array_equal(src.data.T, v.data):
                q = src.quant
                axis = None if q["axis"] is None else 1 - q["axis"]
                return {"q": np.ascontiguousarray(q["q"].T), "scale": q["scale"], "zp": q["zp"], "axis": axis}
        return None

    def const(self, hint: str, data: np.ndarray) -> str:
        return self.g.add_const(hint, np.ascontiguousarray(data))

    def replace(self, node: Node, new: Node, sink: tuple) -> None:
        q, acts, lo, hi = sink
        if lo is not None:
            new.attrs["qmin"] = int(lo)
        if hi is not None:
            new.attrs["qmax"] = int(hi)
        new.outputs = [q.outputs[0]]
        node.op, node.inputs, node.outputs, node.attrs = new.op, new.inputs, new.outputs, new.attrs
        for r in [q, *acts]:
            self.removed.add(id(r))


def _quantize(v: float, s: float, z: int) -> int:
    q = np.float32(v) / np.float32(s)
    return int(np.clip(np.rint(q), -2**20, 2**20)) + int(z) if np.isfinite(q) else (2**20 if q > 0 else -2**20)



"""Pass `fold-qdq`: QDQ patterns (as onnxruntime's quantize_static writes them) become integer
kernels, so quantized models run on int8 data instead of float between DQ/Q pairs.

    DQ(xq) -> Conv(W = DQ(const int8), B = DQ(const int32)) [-> Relu/Clip] -> Q  ==>  QConv
    DQ(aq) -> MatMul/Gemm(B = DQ(const)) [-> Relu/Clip] -> Q                    ==>  QMatMul
    DQ(aq) + DQ(bq) [-> Relu] -> Q                                               ==>  QAdd
    DQ(xq) -> GlobalAveragePool -> Q                                             ==>  QGlobalAveragePool
    DQ(xq) -> MaxPool / Reshape -> Q (same scale and zero point)                 ==>  the op on xq

Weights keep the integers they had in the file (the importer folds DequantizeLinear of
constants to float but records the integer form in `Value.quant`). A fused Relu/Clip becomes a
narrower clamp of the requantized output, which is exact: quantization is monotone.
Anything else (an op without an integer kernel) keeps its float form between DQ and Q: correct,
just not faster; those DQ/Q nodes are the only ones left (`--dump-ir` shows them).
"""

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


def _bias(f: _Fold, name: str, x_scale: float, w_scale: np.ndarray, m: int) -> np.ndarray:
    """Bias as int32 at scale x_scale * w_scale: the file's int32 when it has one."""
    if not name:
        return np.zeros(m, np.int32)
    q = f.weight(name)
    if q is not None and q["q"].dtype == np.int32 and not np.any(q["zp"] if q["zp"] is not None else 0):
        return np.broadcast_to(q["q"].reshape(-1), (m,)).astype(np.int32)
    bias = np.broadcast_to(f.g.values[name].data.reshape(-1), (m,)).astype(np.float32)
    return np.rint(bias / (np.float32(x_scale) * w_scale)).astype(np.int32)


def _weight_params(f: _Fold, w: dict, channels: int, axis: int) -> tuple[str, str, str] | None:
    q = w["q"]
    if q.dtype.name not in ("int8", "uint8") or w["axis"] not in (None, axis):
        return None
    scale = np.broadcast_to(np.asarray(w["scale"], np.float32).reshape(-1), (channels,)).copy()
    zp = np.zeros(channels, q.dtype) if w["zp"] is None else \
        np.broadcast_to(np.asarray(w["zp"]).reshape(-1), (channels,)).astype(q.dtype)
    return f.const("w_q", q), f.const("w_scale", scale), f.const("w_zp", zp)


def _conv(f: _Fold, n: Node) -> None:
    g = f.g
    dq = _dq_input(g, f.prod, n.inputs[0])
    w = f.weight(n.inputs[1])
    sink = f.sink(n.outputs[0])
    if dq is None or w is None or sink is None or n.attrs.get("activation"):
        return
    m = w["q"].shape[0]
    wp = _weight_params(f, w, m, 0)
    if wp is None:
        return
    xq, xs, xz = _params(dq)
    bias = _bias(f, n.inputs[2] if len(n.inputs) > 2 else "", _scalar(g, xs), g.values[wp[1]].data, m)
    _, ys, yz = _params(sink[0])
    attrs = {k: n.attrs[k] for k in ("strides", "pads", "dilations", "group")}
    attrs |= {"kernel": list(w["q"].shape[2:]) if w["q"].ndim == 4 else [1, w["q"].shape[2]], "requant": True}
    f.replace(n, Node("QConv", [xq, xs, xz, wp[0], wp[1], wp[2], ys, yz, f.const("bias_q", bias)], [], attrs,
                      n.name), sink)


def _matmul(f: _Fold, n: Node) -> None:
    g = f.g
    if n.attrs.get("trans_a") or n.attrs.get("activation") or len(g.values[n.inputs[1]].shape) != 2:
        return
    dq = _dq_input(g, f.prod, n.inputs[0])
    w = f.weight(n.inputs[1])
    sink = f.sink(n.outputs[0])
    if dq is None or w is None or sink is None:
        return
    q = w["q"]
    if n.attrs.get("trans_b"):
        axis = None if w["axis"] is None else 1 - w["axis"]
        w = {"q": np.ascontiguousarray(q.T), "scale": w["scale"], "zp": w["zp"], "axis": axis}
    k, cols = w["q"].shape
    wp = _weight_params(f, w, cols, 1)
    if wp is None:
        return
    xq, xs, xz = _params(dq)
    bias = _bias(f, n.inputs[2] if len(n.inputs) > 2 else "", _scalar(g, xs), g.values[wp[1]].data, cols)
    _, ys, yz = _params(sink[0])
    f.replace(n, Node("QMatMul", [xq, xs, xz, wp[0], wp[1], wp[2], ys, yz, f.const("bias_q", bias)], [],
                      {"requant": True}, n.name), sink)


def _add(f: _Fold, n: Node) -> None:
    g = f.g
    a, b = (_dq_input(g, f.prod, i) for i in n.inputs[:2])
    sink = f.sink(n.outputs[0])
    if a is None or b is None or sink is None or sink[3] is not None:
        return
    shape = g.values[n.outputs[0]].shape
    if g.values[a.inputs[0]].shape != shape or g.values[b.inputs[0]].shape != shape:
        return
    f.replace(n, Node("QAdd", [*_params(a), *_params(b), *_params(sink[0])[1:]], [], {}, n.name), sink)


def _global_avg(f: _Fold, n: Node) -> None:
    g = f.g
    dq = _dq_input(g, f.prod, n.inputs[0])
    sink = f.sink(n.outputs[0])
    xs = g.values[n.inputs[0]].shape
    if dq is None or sink is None or sink[2] is not None or len(xs) != 4 \
            or list(n.attrs.get("kernel", [])) != list(xs[2:]) or any(n.attrs.get("pads", [0])):
        return
    f.replace(n, Node("QGlobalAveragePool", [*_params(dq), *_params(sink[0])[1:]], [], {}, n.name), sink)


def _passthrough(f: _Fold, n: Node) -> None:
    """MaxPool / Reshape commute with quantization when the scale and zero point are the same."""
    dq = _dq_input(f.g, f.prod, n.inputs[0])
    sink = f.sink(n.outputs[0])
    if dq is None or sink is None or sink[1] or not _same_params(f.g, dq, sink[0]):
        return
    f.replace(n, Node(n.op, [dq.inputs[0], *n.inputs[1:]], [], dict(n.attrs), n.name), sink)


_RULES = {"Conv": _conv, "MatMul": _matmul, "Add": _add, "AveragePool": _global_avg,
          "MaxPool": _passthrough, "Reshape": _passthrough}


def fold_qdq(g: Graph) -> Graph:
    if not any(n.op in ("QuantizeLinear", "DequantizeLinear") for n in g.nodes):
        return g
    f = _Fold(g)
    for n in list(g.nodes):
        if id(n) not in f.removed and n.op in _RULES:
            _RULES[n.op](f, n)
    g.nodes = [n for n in g.nodes if id(n) not in f.removed]
    _drop_dangling(g)
    return g


def _drop_dangling(g: Graph) -> None:
    """Intermediate values no node produces any more (the float outputs that were folded)."""
    made = {o for n in g.nodes for o in n.outputs} | set(g.inputs)
    used = {i for n in g.nodes for i in n.inputs}
    for name in [k for k, v in g.values.items() if not v.is_const and k not in made and k not in used
                 and k not in g.outputs]:
        del g.values[name]


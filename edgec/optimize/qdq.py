"""Pass `fold-qdq`: QDQ patterns (as onnxruntime's quantize_static writes them) become integer
kernels, so quantized models run on int8 data instead of float between DQ/Q pairs.

    DQ(xq) -> Conv(W = DQ(const int8), B = DQ(const int32)) [-> Relu/Clip] -> Q  ==>  QConv
    DQ(aq) -> MatMul/Gemm(B = DQ(const)) [-> Relu/Clip] -> Q                    ==>  QMatMul
    DQ(aq) + DQ(bq) [-> Relu] -> Q                                               ==>  QAdd
    DQ(xq) -> GlobalAveragePool -> Q                                             ==>  QGlobalAveragePool
    DQ(xq) -> MaxPool / Reshape -> Q (same scale and zero point)                 ==>  the op on xq
    DQ(xq) -> elementwise ops of xq and scalars (HardSwish as x*Clip(x+3)/6) -> Q ==>  QLut (a table:
                                                                              edgec/optimize/qdq_lut.py)

Weights keep the integers they had in the file (the importer folds DequantizeLinear of
constants to float but records the integer form in `Value.quant`). A fused Relu/Clip becomes a
narrower clamp of the requantized output, which is exact: quantization is monotone.
Anything else (an op without an integer kernel) keeps its float form between DQ and Q: correct,
just not faster; those DQ/Q nodes are the only ones left (`--dump-ir` shows them).
"""

from __future__ import annotations

import numpy as np

from edgec.ir.graph import Graph, Node
from edgec.optimize.qdq_lut import fold_lut_region
from edgec.optimize.qdq_match import _dq_input, _Fold, _params, _same_params, _scalar


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
    for n in list(g.nodes):  # after the integer kernels took their DQ/Q pairs
        if id(n) not in f.removed and n.op == "DequantizeLinear":
            fold_lut_region(f, n)
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


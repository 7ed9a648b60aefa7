"""ConvInteger / MatMulInteger (IR QConv / QMatMul with `requant` False: an int32 result, as
onnxruntime's dynamic quantization writes them) computed by edgec's fast float kernels, exactly:
the fallback of the target pass `integer-products` (edgec/kernels/int8/prepare_qgemm.py) where
the target has no byte dot products for the node.

(x - x_zero_point) and (w - w_zero_point) are integers; in float32 every product of two such
integers and every partial sum is exact while the sum of |products| stays below 2^24, in any
order of summation (so threads, FMA contraction and reassociation cannot change the result).
|x - x_zp| <= 255, so a weight column whose sum of |w - w_zp| times 255 is below 2^24 gives the
exact int32 through DequantizeLinear(x, 1, x_zp) -> Conv/MatMul(w - w_zp as float) -> Cast. The
float nodes carry `exact`, which keeps Winograd (fractional transforms) and weight compression
away from them. Columns past the bound keep the integer reference kernel.
"""

from __future__ import annotations

import numpy as np

from edgec.ir.graph import Graph, Node, Value

EXACT = float(2**24)


def _const(g: Graph, name: str) -> np.ndarray | None:
    v = g.values.get(name) if name else None
    return v.data if v is not None and v.is_const else None


def rewrite_integer_node(g: Graph, n: Node) -> list[Node] | None:
    """The float nodes computing QConv / QMatMul (`requant` False) exactly, or None."""
    x, _, xz, w, _, wz = (n.inputs + [""] * 6)[:6]
    wq, y = _const(g, w), n.outputs[0]
    # x's zero point may be computed at run time (DynamicQuantizeLinear): |x - x_zp| <= 255 anyway
    if wq is None or (wz and _const(g, wz) is None):
        return None
    if g.values[y].dtype != np.int32 or g.values[x].dtype.name not in ("uint8", "int8"):
        return None
    conv = n.op == "QConv"
    if not conv and (wq.ndim != 2 or len(g.values[x].shape) < 2):
        return None
    zp = np.zeros(1, np.int64) if not wz else _const(g, wz).astype(np.int64).reshape(-1)
    # per output channel (conv: axis 0) or column (matmul: axis 1)
    wd = wq.astype(np.int64) - (zp.reshape(-1, *[1] * (wq.ndim - 1)) if conv else zp.reshape(1, -1))
    mass = np.abs(wd).reshape(wd.shape[0], -1).sum(1) if conv else np.abs(wd).sum(0)
    if float(mass.max(initial=0)) * 255.0 >= EXACT:
        return None
    xf = g.fresh(f"{x}_centered")
    g.values[xf] = Value(xf, np.dtype(np.float32), g.values[x].shape)
    one = g.add_const(f"{n.name or y}_unit_scale", np.array(1.0, np.float32))
    yf = g.fresh(f"{y}_float")
    g.values[yf] = Value(yf, np.dtype(np.float32), g.values[y].shape)
    wf = g.add_const(f"{w}_centered", wd.astype(np.float32))
    dq = Node("DequantizeLinear", [x, one, xz] if xz else [x, one], [xf], {}, n.name)
    if conv:
        attrs = {k: v for k, v in n.attrs.items() if k in ("strides", "pads", "dilations", "group")}
        op = Node("Conv", [xf, wf], [yf], {**attrs, "exact": True}, n.name)
    else:
        op = Node("MatMul", [xf, wf], [yf], {"trans_a": False, "trans_b": False, "exact": True}, n.name)
    return [dq, op, Node("Cast", [yf], [y], {"to": "int32"}, n.name)]

"""Target pass `integer-products` (ConvInteger: dynamic_conv.py). MatMulInteger with a constant B (IR QMatMul, `requant` False:
the int32 product of onnxruntime's dynamic quantization, whose A zero point comes from a
DynamicQuantizeLinear at run time) on the byte dot products: `QGemmDot` (lower_qgemm.py).
Where the target has no usable dot, the node goes to the exact float path of
edgec/optimize/integer_float.py instead.

The encoding. The dots multiply one unsigned-or-signed byte operand (A's, `a_enc`) by signed
bytes (B's): x86 wants u8 x s8, aarch64's sdot s8 x s8. A is re-encoded with one xor
(`flip` 0x80 maps int8 <-> uint8, i.e. a = a_enc + offset with offset = -128 or +128, else 0).
B is stored as B' = B - cb in int8: cb = B's zero point when every B - zp fits int8 (ONNX
symmetric int8 weights: cb = 0), else 128 for uint8 B (B - 128 always fits). With
alpha = offset - a_zp and beta = cb - b_zp (per column):
    sum_k (a - a_zp)(b - b_zp) = sum_k a_enc B' + beta * sum_k a_enc + alpha * (sum_k B' + K beta)
so the kernel adds beta[n] * rowsum(a_enc)[m] (rows summed once per call, only where some
beta != 0) and alpha * col_term[n] to the raw dot sums. Every term is an exact int32.
x86 without VNNI (vpmaddubsw sums pairs in int16 with saturation) qualifies only when
|B'| <= 64, as in quads.py.
"""

from __future__ import annotations

import numpy as np

from edgec.ir.graph import Graph, Node
from edgec.kernels.int8.dynamic_conv import dynamic_conv_nodes
from edgec.optimize.integer_float import rewrite_integer_node
from edgec.targets import TargetProfile

LANES = {"vnni": 8, "u8s8": 8, "s8s8": 4}


def _const(g: Graph, name: str) -> np.ndarray | None:
    v = g.values.get(name) if name else None
    return v.data if v is not None and v.is_const else None


def _encoding(bq: np.ndarray, bz: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(B' int8, beta int32 per column) or None when B is not 8-bit."""
    b32 = bq.astype(np.int32)
    centered = b32 - bz.reshape(1, -1)
    if centered.min(initial=0) >= -128 and centered.max(initial=0) <= 127:
        return centered.astype(np.int8), np.zeros(bq.shape[1], np.int32)
    cb = 128 if bq.dtype == np.uint8 else 0
    return (b32 - cb).astype(np.int8), (cb - bz).astype(np.int32)


def _schedule(profile: TargetProfile, m: int, lanes: int) -> tuple[int, int]:
    """(MR rows, NV column vectors): MR * NV accumulators + NV B vectors + the broadcast (+1
    for vpmaddubsw's int16 products) within the vector registers. MR is the candidate with the
    fewest row tiles (then the largest)."""
    regs = profile.vector_registers
    nv = 4 if regs == 32 else 2
    top = max(1, min(8, (regs - nv - 2) // nv))
    mr = min(range(1, top + 1), key=lambda r: (-(-m // r), -r))
    return mr, nv


def _qgemm(g: Graph, n: Node, profile: TargetProfile) -> Node | None:
    dot = profile.int8_dot
    if dot not in LANES:
        return None
    a, _, az, bname, _, bz = (n.inputs + [""] * 6)[:6]
    bq = _const(g, bname)
    y = n.outputs[0]
    av = g.values[a]
    if bq is None or bq.ndim != 2 or (bz and _const(g, bz) is None) or len(av.shape) < 2 \
            or av.dtype.name not in ("uint8", "int8") or bq.dtype.name not in ("uint8", "int8") \
            or g.values[y].dtype != np.int32 or (az and g.values[az].size != 1):
        return None
    k, nn = bq.shape
    m = int(np.prod(av.shape[:-1]))
    if m > 4096:  # the row sums live on the stack
        return None
    bzv = np.zeros(nn, np.int32) if not bz else np.broadcast_to(_const(g, bz).astype(np.int32).reshape(-1), (nn,))
    enc = _encoding(bq, bzv)
    if enc is None:
        return None
    bp, beta = enc
    if dot == "u8s8" and np.abs(bp.astype(np.int32)).max(initial=0) > 64:
        return None
    lanes = LANES[dot]
    a_signed = av.dtype == np.int8
    want_signed = dot == "s8s8"
    flip = 0x80 if a_signed != want_signed else 0
    offset = 0 if not flip else (-128 if a_signed else 128)
    kq, npad = -(-k // 4), -(-nn // lanes) * lanes
    full = np.zeros((kq * 4, npad), np.int8)
    full[:k, :nn] = bp
    packed = full.reshape(kq, 4, npad // lanes, lanes).transpose(2, 0, 3, 1)  # [nb][kq][lanes][4]
    col_term = np.zeros(npad, np.int32)
    col_term[:nn] = bp.astype(np.int32).sum(0) + k * beta
    beta_p = np.zeros(npad, np.int32)
    beta_p[:nn] = beta
    mr, nv = _schedule(profile, m, lanes)
    name = n.name or y
    ins = [a, az, g.add_const(f"{name}_bquads", np.ascontiguousarray(packed).reshape(-1)),
           g.add_const(f"{name}_col_term", col_term), g.add_const(f"{name}_beta", beta_p)]
    attrs = {"dot": dot, "lanes": lanes, "mr": mr, "nv": nv, "flip": flip, "offset": offset,
             "row_sums": bool(beta.any())}
    return Node("QGemmDot", ins, [y], attrs, n.name)


def qgemm_node(g: Graph, a: str, a_zp: str, b: str, y: str, profile: TargetProfile, name: str) -> Node | None:
    """QGemmDot for y = (a - a_zp) @ b (b a constant int8/uint8 [K, N], y int32), or None."""
    return _qgemm(g, Node("QMatMul", [a, "", a_zp, b, "", ""], [y], {"requant": False}, name), profile)


def integer_products(profile: TargetProfile):  # noqa: ANN201 - returns a Pass
    """Target pass `integer-products`: MatMulInteger -> QGemmDot, ConvInteger -> QConvQuads +
    QConvOcvec (dynamic_conv.py) where the target's byte dots take them, else the exact float
    nodes of integer_float.py, else (past its exactness bound) the integer reference kernel."""
    def run(g: Graph) -> Graph:
        nodes: list[Node] = []
        for n in g.nodes:
            if n.op not in ("QMatMul", "QConv") or n.attrs.get("requant", True):
                nodes.append(n)
                continue
            fast = [_qgemm(g, n, profile)] if n.op == "QMatMul" else dynamic_conv_nodes(g, n, profile)
            nodes.extend(fast if fast and fast[0] is not None else (rewrite_integer_node(g, n) or [n]))
        g.nodes = nodes
        return g

    return run

"""Target pass `prepare-qconv`: a QConv with constant weights and parameters becomes
QConvPrep + QConvDirect (edgec/kernels/int8/lower_direct.py): weights minus their zero point
as int16 pairs packed in the kernel's read order, int32 bias and fp32 requantization multipliers
per output channel computed at build time (x_scale * w_scale / y_scale, onnxruntime's order)."""

from __future__ import annotations

import numpy as np

from edgec.ir.graph import Graph, Node, Value
from edgec.kernels.generic.quant import qrange
from edgec.kernels.int8.quads import fits_7bit, quad_nodes
from edgec.targets import TargetProfile


def pair_conv_attrs(g: Graph, n: Node, kh: int, kw: int, mg: int, profile: TargetProfile) -> dict:
    """The attrs QConvPrep / QConvDirect (int16 pairs) share for conv node `n`: window,
    strides, pads, groups, the flattened 1x1 form, and the MR x NRV register tile."""
    _, _, oh, ow = g.values[n.outputs[0]].shape
    pt, pl, pb, pr = n.attrs["pads"]
    sh, sw = n.attrs["strides"]
    lanes, regs = profile.fp32_lanes, profile.vector_registers
    flat = [kh, kw] == [1, 1] and [sh, sw] == [1, 1] and not any((pt, pl, pb, pr))
    width = oh * ow if flat else ow
    # MR x NRV accumulators + NRV inputs + the broadcast + vpmaddwd's result must fit:
    # 4x3 (17 registers) spilled an accumulator every step; 6x2 is 12-15% faster on
    # ResNet-18's 64 -> 64 3x3 at 56x56 (A/B, bit-equal outputs).
    nrv = max(1, min(4 if regs == 32 else 2, -(-width // lanes)))
    mr = max(1, min(8, (regs - nrv - 2) // nrv, mg))
    return {"kernel": [kh, kw], "strides": [1, 1] if flat else [sh, sw], "dilations": list(n.attrs["dilations"]),
            "group": n.attrs["group"], "pads": [0, 0, 0, 0] if flat else [pt, pl, pb, pr], "flatten": flat,
            "schedule": {"mr": mr, "nrv": nrv, "lanes": lanes}}


def _const(g: Graph, name: str) -> np.ndarray | None:
    v = g.values.get(name) if name else None
    return v.data if v is not None and v.is_const else None


def _eligible(g: Graph, n: Node) -> bool:
    if n.op != "QConv" or not n.attrs.get("requant", True):
        return False
    x, xs, xz, w, ws, wz, ys, yz, bias = (n.inputs + [""] * 9)[:9]
    xv, yv = g.values[x], g.values[n.outputs[0]]
    if len(xv.shape) != 4 or xv.shape[0] != 1 or xv.dtype.name not in ("uint8", "int8") \
            or yv.dtype.name not in ("uint8", "int8"):
        return False
    consts = [_const(g, k) for k in (xs, w, ws, ys)]
    if any(c is None for c in consts) or any(k and _const(g, k) is None for k in (xz, wz, yz, bias)):
        return False
    return all(g.values[k].dtype == np.float32 for k in (xs, ws, ys))


def _pack(w16: np.ndarray, groups: int, mr: int) -> np.ndarray:
    """(M, Cg, KH, KW) int16 -> int16 pairs [g][ocb][cp][kh][kw][mr][2], as int32 words."""
    m, cg, kh, kw = w16.shape
    mg, cp = m // groups, -(-cg // 2)
    mgp = -(-mg // mr) * mr
    full = np.zeros((groups, mgp, 2 * cp, kh, kw), np.int16)
    full[:, :mg, :cg] = w16.reshape(groups, mg, cg, kh, kw)
    t = full.reshape(groups, mgp // mr, mr, cp, 2, kh, kw).transpose(0, 1, 3, 5, 6, 2, 4)
    return np.ascontiguousarray(t).view(np.int32).reshape(-1)


def _per_oc(v: np.ndarray, groups: int, mr: int, m: int, dtype: type) -> np.ndarray:
    mg = m // groups
    mgp = -(-mg // mr) * mr
    out = np.zeros((groups, mgp), dtype)
    out[:, :mg] = np.broadcast_to(v.reshape(-1), (m,)).reshape(groups, mg)
    return out.reshape(-1)


def _gemv(g: Graph, n: Node, lanes: int, quads: bool) -> Node | None:
    """QMatMul of a row vector (batch 1) by a constant matrix -> QGemv, or None."""
    a, as_, az, bm, bs, bz, ys, yz, bias = (n.inputs + [""] * 9)[:9]
    av, yv = g.values[a], g.values[n.outputs[0]]
    bq = _const(g, bm)
    if not n.attrs.get("requant", True) or bq is None or bq.ndim != 2 or av.size != bq.shape[0] \
            or yv.size != bq.shape[1] or av.dtype.name not in ("uint8", "int8") \
            or yv.dtype.name not in ("uint8", "int8") or bq.dtype.name not in ("uint8", "int8"):
        return None
    if any(_const(g, k) is None for k in (as_, bs, ys)) or any(k and _const(g, k) is None for k in (az, bz, yz, bias)):
        return None
    if _const(g, as_).size != 1 or (az and _const(g, az).size != 1):
        return None
    k, cols = bq.shape
    bzp = np.zeros(cols, np.int32) if not bz else np.broadcast_to(_const(g, bz).astype(np.int32).reshape(-1), (cols,))
    b32 = (bq.astype(np.int32) - bzp)
    npad = -(-cols // lanes) * lanes
    extra: dict = {}
    if quads and fits_7bit(b32):  # vpmaddubsw byte quads (qmatmul.py); the zero point moves to the bias
        kq = -(-k // 4)
        full = np.zeros((4 * kq, npad), np.int8)
        full[:k, :cols] = b32
        packed = np.ascontiguousarray(full.reshape(kq, 4, npad // lanes, lanes).transpose(2, 0, 3, 1)).view(np.int32)
        flip = 0x80 if av.dtype.name == "int8" else 0
        azp = int(_const(g, az).reshape(-1)[0]) if az else 0
        pad = (azp ^ flip) & 0xFF if flip else azp
        extra = {"dot": "u8s8", "flip": flip, "pad": pad, "bias_shift": -pad * b32.sum(axis=0, dtype=np.int64)}
    else:
        kp = -(-k // 2)
        full = np.zeros((2 * kp, npad), np.int16)
        full[:k, :cols] = b32.astype(np.int16)
        packed = np.ascontiguousarray(full.reshape(kp, 2, npad // lanes, lanes).transpose(2, 0, 3, 1)).view(np.int32)
    mult = (np.float32(_const(g, as_).reshape(-1)[0]) * np.broadcast_to(
        _const(g, bs).astype(np.float32).reshape(-1), (cols,))).astype(np.float32)
    mult = np.pad((mult / np.float32(_const(g, ys).reshape(-1)[0])).astype(np.float32), (0, npad - cols))
    b64 = np.zeros(cols, np.int64) if not bias else _const(g, bias).astype(np.int64).reshape(-1)
    b64 = b64 + extra.pop("bias_shift", 0)
    if b64.min(initial=0) < -(2**31) or b64.max(initial=0) >= 2**31:
        return None
    b32 = np.pad(b64.astype(np.int32), (0, npad - cols))
    qmin, qmax = qrange(yv.dtype)
    y = n.outputs[0]
    return Node("QGemv", [a, az, g.add_const(f"{bm}_pairs", packed.reshape(-1)), g.add_const(f"{y}_bias", b32),
                          g.add_const(f"{y}_mult", mult), yz], [y],
                {"lanes": lanes, "qmin": max(qmin, n.attrs.get("qmin", qmin)),
                 "qmax": min(qmax, n.attrs.get("qmax", qmax)), **extra}, n.name)


def prepare_qconv(profile: TargetProfile):  # noqa: ANN201 - returns a Pass
    lanes = profile.fp32_lanes
    regs = profile.vector_registers
    dot = profile.int8_dot

    def run(g: Graph) -> Graph:
        nodes: list[Node] = []
        for n in g.nodes:
            gemv = _gemv(g, n, lanes, dot == "u8s8") if n.op == "QMatMul" else None
            if gemv is not None:
                nodes.append(gemv)
                continue
            if not _eligible(g, n):
                nodes.append(n)
                continue
            x, xs, xz, w, ws, wz, ys, yz, bias = (n.inputs + [""] * 9)[:9]
            y = n.outputs[0]
            wq = _const(g, w)
            m, cg, kh, kw = wq.shape
            groups = n.attrs["group"]
            mg = m // groups
            wzp = np.zeros(m, np.int32) if not wz else np.broadcast_to(_const(g, wz).astype(np.int32).reshape(-1), (m,))
            w32 = wq.astype(np.int32) - wzp.reshape(-1, 1, 1, 1)
            w16 = w32.astype(np.int16)
            _, _, h, wd = g.values[x].shape
            common = pair_conv_attrs(g, n, kh, kw, mg, profile)
            pt, pl, pb, pr = n.attrs["pads"]
            sh, sw = n.attrs["strides"]
            flat, mr = common["flatten"], common["schedule"]["mr"]
            mult = (np.float32(_const(g, xs).reshape(-1)[0]) * np.broadcast_to(
                _const(g, ws).astype(np.float32).reshape(-1), (m,))).astype(np.float32)
            mult = (mult / np.float32(_const(g, ys).reshape(-1)[0])).astype(np.float32)
            b32 = np.zeros(m, np.int32) if not bias else _const(g, bias).astype(np.int32)
            qmin, qmax = qrange(g.values[y].dtype)
            attrs = {**common, "qmin": max(qmin, n.attrs.get("qmin", qmin)),
                     "qmax": min(qmax, n.attrs.get("qmax", qmax))}
            if dot:
                q = quad_nodes(g, n, w32, b32, dict(attrs, mult=mult),
                               lambda v, r, t, gr=groups, mm=m: _per_oc(v, gr, r, mm, t),
                               regs, 8 if dot == "vnni" else lanes, dot)  # VNNI: ymm quads
                if q is not None:
                    nodes.extend(q)
                    continue
            rows, cols = (1, h * wd) if flat else (h + pt + pb, wd + pl + pr)
            xp = g.fresh(f"{x}_pairs")
            g.values[xp] = Value(xp, np.dtype(np.int32), (groups * -(-cg // 2), rows, cols + lanes * sw))
            nodes.append(Node("QConvPrep", [x, xz], [xp], attrs, n.name))
            nodes.append(Node("QConvDirect", [xp, g.add_const(f"{w}_pairs", _pack(w16, groups, mr)),
                                              g.add_const(f"{y}_bias", _per_oc(b32, groups, mr, m, np.int32)),
                                              g.add_const(f"{y}_mult", _per_oc(mult, groups, mr, m, np.float32)),
                                              yz], [y], dict(attrs), n.name))
        g.nodes = nodes
        return g

    return run

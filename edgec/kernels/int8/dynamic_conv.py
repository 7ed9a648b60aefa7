"""ConvInteger with constant weights and a run-time input zero point (onnxruntime's dynamic
quantization: DynamicQuantizeLinear -> ConvInteger -> Cast -> Mul) on the byte dot products:
QConvQuads (channels layout, padded with the zero point read at run time) + QConvOcvec with
`requant` False (exact int32 sums minus pad * sum_w, edgec/kernels/int8/lower_ocvec.py).

Taken on x86 with VNNI (vpdpbusd: full-range int8 weights) or AVX2 when every centered weight is
in [-64, 64] (vpmaddubsw), for dense convs (one group, at least 3 input channels so quads fill)
whose output channels are a multiple of 16 (QConvOcvec's blocks). Every other ConvInteger with
constant weights (uint8 weights whose centered values leave int8, groups, targets without byte
dots) runs on int16 pairs: QConvPrep subtracts the run-time zero point, QConvDirect stores the
int32 sums (pmaddwd on x86, smull/smlal on ARM).
"""

from __future__ import annotations

import numpy as np

from edgec.ir.graph import Graph, Node, Value
from edgec.kernels.int8.prepare import _pack, _per_oc, pair_conv_attrs
from edgec.kernels.int8.quads import _pack_channels, fits_7bit, ocvec_tile
from edgec.targets import TargetProfile

LANES = 8  # int32 lanes of the byte-quad kernels (ymm, also on AVX-512 profiles)


def _const(g: Graph, name: str) -> np.ndarray | None:
    v = g.values.get(name) if name else None
    return v.data if v is not None and v.is_const else None


def dynamic_conv_nodes(g: Graph, n: Node, profile: TargetProfile) -> list[Node] | None:
    dot = profile.int8_dot
    if n.op != "QConv" or n.attrs.get("requant", True):
        return None
    x, _, xz, w, _, wz = (n.inputs + [""] * 6)[:6]
    y = n.outputs[0]
    wq, xv = _const(g, w), g.values[x]
    if wq is None or (wz and _const(g, wz) is None) or len(xv.shape) != 4 or xv.shape[0] != 1 \
            or xv.dtype.name not in ("uint8", "int8") or g.values[y].dtype != np.int32 \
            or (xz and g.values[xz].size != 1) or wq.ndim != 4:
        return None
    m, cg, kh, kw = wq.shape
    wzp = np.zeros(m, np.int32) if not wz else np.broadcast_to(_const(g, wz).astype(np.int32).reshape(-1), (m,))
    wc = wq.astype(np.int32) - wzp.reshape(-1, 1, 1, 1)
    if float(np.abs(wc).reshape(m, -1).sum(axis=1).max(initial=0)) * 255 >= 2**31:
        return None  # int32 sums could overflow: the reference kernel
    if not xz:  # no zero point: a constant 0 read at run time like the computed ones
        xz = g.add_const(f"{n.name or y}_x_zero", np.zeros((), xv.dtype))
    dense = dot in ("vnni", "u8s8") and m % 16 == 0 and cg >= 3 and n.attrs["group"] == 1
    if dense and wc.min() >= -128 and wc.max() <= 127 and (dot == "vnni" or fits_7bit(wc)):
        return _quads(g, n, wc, xz, profile)
    if dense and dot == "vnni" and wq.dtype == np.uint8:
        return _shifted_quads(g, n, wq, wzp, xz, profile)
    return _pairs(g, n, wc, xz, profile)


def _shifted_quads(g: Graph, n: Node, wq: np.ndarray, wzp: np.ndarray, xz: str,
                   profile: TargetProfile) -> list[Node]:
    """uint8 weights whose zero point leaves w - zp outside int8 (onnxruntime's default
    dynamic quantization of convs): the byte dots take w' = w - 128 (always int8), and
    sum (x - x_zp)(w - w_zp) = sum (x - x_zp) w' + (128 - w_zp) * S, where S, the window sum of
    x - x_zp over channels and taps, is one output channel of the pair kernel with unit weights
    (1/M of the conv's work). y = the quads conv + beta[oc] * S, exact int32 (ddddocr's
    dynamic CRNN: its 192- and 256-channel 3x3 convs ran on int16 pairs, half the MACs per
    instruction of vpdpbusd)."""
    y = n.outputs[0]
    m, cg, kh, kw = wq.shape
    shape = g.values[y].shape
    name = n.name or y
    acc, wsum = g.fresh(f"{y}_shifted"), g.fresh(f"{y}_window_sum")
    g.values[acc] = Value(acc, np.dtype(np.int32), shape)
    g.values[wsum] = Value(wsum, np.dtype(np.int32), (shape[0], 1, *shape[2:]))
    shifted = _quads(g, Node(n.op, n.inputs, [acc], n.attrs, n.name),
                     wq.astype(np.int32) - 128, xz, profile)
    ones = _pairs(g, Node(n.op, n.inputs, [wsum], n.attrs, n.name), np.ones((1, cg, kh, kw), np.int32), xz, profile)
    beta = g.add_const(f"{name}_beta", (128 - wzp).astype(np.int32).reshape(1, m, 1, 1))
    scaled = g.fresh(f"{y}_window_term")
    g.values[scaled] = Value(scaled, np.dtype(np.int32), shape)
    return [*shifted, *ones, Node("Mul", [beta, wsum], [scaled], {}, n.name), Node("Add", [acc, scaled], [y], {}, n.name)]


def _pairs(g: Graph, n: Node, wc: np.ndarray, xz: str, profile: TargetProfile) -> list[Node]:
    """QConvPrep (x minus the run-time zero point as int16 pairs, zero padded) + QConvDirect
    storing the int32 sums: any 8-bit weights, any group count, every target."""
    x, y = n.inputs[0], n.outputs[0]
    m, cg, kh, kw = wc.shape
    groups = n.attrs["group"]
    lanes = profile.fp32_lanes
    _, _, h, wd = g.values[x].shape
    pt, pl, pb, pr = n.attrs["pads"]
    sw = n.attrs["strides"][1]
    attrs = {**pair_conv_attrs(g, n, kh, kw, m // groups, profile), "qmin": 0, "qmax": 0, "requant": False}
    flat, mr = attrs["flatten"], attrs["schedule"]["mr"]
    rows, cols = (1, h * wd) if flat else (h + pt + pb, wd + pl + pr)
    xp = g.fresh(f"{x}_pairs")
    g.values[xp] = Value(xp, np.dtype(np.int32), (groups * -(-cg // 2), rows, cols + lanes * sw))
    name = n.name or y
    zeros = g.add_const(f"{name}_zero_bias", _per_oc(np.zeros(m, np.int32), groups, mr, m, np.int32))
    return [Node("QConvPrep", [x, xz], [xp], {k: v for k, v in attrs.items() if k != "requant"}, n.name),
            Node("QConvDirect", [xp, g.add_const(f"{name}_pairs", _pack(wc.astype(np.int16), groups, mr)),
                                 zeros, zeros, ""], [y], attrs, n.name)]


def _quads(g: Graph, n: Node, wc: np.ndarray, xz: str, profile: TargetProfile) -> list[Node]:
    x, y = n.inputs[0], n.outputs[0]
    xv = g.values[x]
    m, cg, kh, kw = wc.shape
    dot = profile.int8_dot
    _, _, h, wd = xv.shape
    _, _, oh, ow = g.values[y].shape
    pt, pl, pb, pr = n.attrs["pads"]
    sh, sw = n.attrs["strides"]
    flat = [kh, kw] == [1, 1] and [sh, sw] == [1, 1] and not any((pt, pl, pb, pr))
    width = oh * ow if flat else ow
    mr, nrv = ocvec_tile(width, profile.vector_registers)
    rows, cols = (1, h * wd) if flat else (h + pt + pb, wd + pl + pr)
    xq = g.fresh(f"{x}_quads")
    g.values[xq] = Value(xq, np.dtype(np.int32), (-(-cg // 4), rows, cols + LANES * sw))
    flip = 0x80 if xv.dtype == np.int8 else 0  # the quads hold u8 bytes
    pads = [0, 0, 0, 0] if flat else [pt, pl, pb, pr]
    prep = {"mode": "channels", "group": 1, "pads": pads, "flatten": flat, "flip": flip, "pad": 0}
    sum_w = np.zeros(-(-m // (nrv * LANES)) * nrv * LANES, np.int32)
    sum_w[:m] = wc.reshape(m, -1).sum(axis=1)
    attrs = {"kernel": [kh, kw], "strides": [1, 1] if flat else [sh, sw], "dilations": list(n.attrs["dilations"]),
             "pads": pads, "group": 1, "flatten": flat, "qmin": 0, "qmax": 0, "dot": dot, "requant": False,
             "flip": flip, "schedule": {"mr": mr, "nrv": nrv, "lanes": LANES}}
    packed = _pack_channels(wc.astype(np.int8), 1, nrv * LANES)
    name = n.name or y
    return [Node("QConvQuads", [x, xz], [xq], prep, n.name),
            Node("QConvOcvec", [xq, g.add_const(f"{name}_quads", packed), g.add_const(f"{name}_sum_w", sum_w), xz],
                 [y], attrs, n.name)]

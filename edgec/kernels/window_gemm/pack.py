"""Target pass `prepare-window-gemm`: 1-D convolutions with long kernels (>= MIN_TAPS), no
padding or dilation, one group, and MatMuls of several rows by a constant matrix become
`WindowGemm` (spec.py) with their weights packed.
The direct-conv kernels vectorize over output positions, which for a stride-160 STFT conv means
one gathered lane per load (openWakeWord's log-mel front end ran 11x slower than onnxruntime)."""

from __future__ import annotations

import numpy as np

from edgec.ir.graph import Graph, Node
from edgec.kernels.generic.column_blocks import pack_column_blocks
from edgec.targets import TargetProfile

MIN_TAPS = 32
MAX_NV = 4  # vectors per tile row: more leaves too few registers for rows


def _eligible(g: Graph, n: Node) -> bool:
    if n.op != "Conv" or len(n.inputs) < 2 or not g.values[n.inputs[1]].is_const:
        return False
    x, w, y = g.values[n.inputs[0]], g.values[n.inputs[1]], g.values[n.outputs[0]]
    if x.dtype != np.float32 or y.dtype != np.float32 or len(x.shape) not in (3, 4):
        return False
    if len(x.shape) == 4 and (x.shape[2] != 1 or w.shape[2] != 1):
        return False
    return (n.attrs.get("group", 1) == 1 and not any(n.attrs.get("pads", [0])) and w.shape[-1] >= MIN_TAPS
            and list(n.attrs.get("dilations", [1, 1])) == [1, 1] and n.attrs["strides"][0] == 1)


def _multi_row_matmul(g: Graph, n: Node) -> bool:
    """An fp32 MatMul of rows (A is [..., M, K], more than one row in all) by a constant 2-D B,
    with an optional constant bias: batch-1 ones are Gemv's."""
    if n.op != "MatMul" or n.attrs.get("trans_a") or len(n.inputs) < 2:
        return False
    a, w = g.values[n.inputs[0]], g.values[n.inputs[1]]
    if a.dtype != np.float32 or len(a.shape) < 2 or a.size // a.shape[-1] < 2:
        return False
    if not w.is_const or w.dtype != np.float32 or len(w.shape) != 2:
        return False
    k, cols = (w.shape[1], w.shape[0]) if n.attrs.get("trans_b") else w.shape
    bias = g.values[n.inputs[2]] if len(n.inputs) > 2 and n.inputs[2] else None
    return (a.shape[-1] == k and g.values[n.outputs[0]].shape[-1] == cols
            and (bias is None or (bias.is_const and bias.size == cols and bias.dtype == np.float32)))


def schedule(profile: TargetProfile, n: int, taps: int) -> dict:
    """The widest tile (the last, partial block gets a narrower tile of its own in lower.py, so
    a wide one wastes no padding), as many rows as the registers hold, and the channels left
    over a whole number of vectors as dot products (tail.py) when a window holds a vector."""
    lanes = profile.fp32_lanes
    nv = max(1, min(MAX_NV, -(-n // lanes)))
    mr = max(1, min(8, (profile.vector_registers - nv - 1) // nv))
    return {"mr": mr, "nv": nv, "lanes": lanes, "dot": n % lanes if taps >= lanes else 0}


def pack(w: np.ndarray, bias: np.ndarray | None, s: dict, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """W (C * taps x N) in column blocks of NB (pack_column_blocks), then the last `dot` columns
    as [dot][C][taps rounded up to lanes, zero padded] (tail.py); the biases alike."""
    nb, dot, lanes = s["nv"] * s["lanes"], s["dot"], s["lanes"]
    n = w.shape[1]
    bias = None if bias is None else np.asarray(bias, np.float32).reshape(-1)
    blocks, b = pack_column_blocks(w[:, :n - dot], None if bias is None else bias[:n - dot], nb)
    if not dot:
        return blocks.reshape(-1), b
    taps = w.shape[0] // channels
    tp = -(-taps // lanes) * lanes
    tail = np.zeros((dot, channels, tp), np.float32)
    tail[:, :, :taps] = w[:, n - dot:].T.reshape(dot, channels, taps)
    tb = np.zeros(dot, np.float32) if bias is None else bias[n - dot:]
    return np.concatenate([blocks.reshape(-1), tail.reshape(-1)]), np.concatenate([b, tb])


def prepare_window_gemm(profile: TargetProfile):  # noqa: ANN201 - a Pass
    def run(g: Graph) -> Graph:
        nodes: list[Node] = []
        for n in g.nodes:
            if _multi_row_matmul(g, n):
                nodes.append(_matmul(g, n, profile))
                continue
            if not _eligible(g, n):
                nodes.append(n)
                continue
            x, w = g.values[n.inputs[0]], g.values[n.inputs[1]].data
            m, c = w.shape[:2]
            taps = w.shape[-1]
            s = schedule(profile, m, taps)
            nb = s["nv"] * s["lanes"]
            bias = g.values[n.inputs[2]].data if len(n.inputs) > 2 and n.inputs[2] else None
            packed, b = pack(np.asarray(w, np.float32).reshape(m, c * taps).T, bias, s, c)
            attrs = {"batch": x.shape[0], "channels": c, "width": x.shape[-1], "taps": taps,
                     "stride": n.attrs["strides"][1], "rows": g.values[n.outputs[0]].shape[-1], "n": m,
                     "schedule": s, "activation": n.attrs.get("activation"), "layout": "nct"}
            nodes.append(Node("WindowGemm", [n.inputs[0], g.add_const(f"{n.inputs[1]}_wg{nb}", packed),
                                             g.add_const(f"{n.outputs[0]}_wg_bias{nb}", b)],
                              list(n.outputs), attrs, n.name))
        g.nodes = nodes
        return g

    return run


def _matmul(g: Graph, n: Node, profile: TargetProfile) -> Node:
    a, w = g.values[n.inputs[0]], np.asarray(g.values[n.inputs[1]].data, np.float32)
    w = w.T if n.attrs.get("trans_b") else w
    k, m = w.shape
    rows = a.size // k
    s = schedule(profile, m, k)
    nb = s["nv"] * s["lanes"]
    bias = g.values[n.inputs[2]].data if len(n.inputs) > 2 and n.inputs[2] else None
    packed, b = pack(w, bias, s, 1)
    attrs = {"batch": 1, "channels": 1, "width": a.size, "taps": k, "stride": k, "rows": rows, "n": m,
             "schedule": s, "activation": n.attrs.get("activation"), "layout": "tn"}
    return Node("WindowGemm", [n.inputs[0], g.add_const(f"{n.inputs[1]}_wg{nb}", packed),
                               g.add_const(f"{n.outputs[0]}_wg_bias{nb}", b)], list(n.outputs), attrs, n.name)

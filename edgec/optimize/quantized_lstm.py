"""Target pass `recurrent-dot`: onnxruntime's DynamicQuantizeLSTM on byte dot products (x86
with VNNI). The kernel side is edgec/kernels/rnn/recurrent_dot.py (it explains the inputs it
gains); this pass spans two kernel families, the RNN kernel and the int8 QGemmDot that takes
over the input projection, so it lives here."""

from __future__ import annotations

import numpy as np

from edgec.ir.graph import Graph, Node, Value
from edgec.kernels.int8.prepare_qgemm import qgemm_node
from edgec.kernels.rnn.recurrent_dot import COLSUM, LANES, NV, PROJ, QUADS, XSCALE, recurrent_quads
from edgec.targets import TargetProfile


def recurrent_dot_pass(profile: TargetProfile):  # noqa: ANN201 - returns a Pass
    def run(g: Graph) -> Graph:
        if profile.int8_dot != "vnni":
            return g
        producers = {o: nd for nd in g.nodes for o in nd.outputs}
        nodes: list[Node] = []
        for node in g.nodes:
            a = node.attrs
            ins = node.inputs + [""] * (COLSUM + 1 - len(node.inputs))
            n = a["gates"] * a["hidden_padded"] if node.op == "LSTM" else 0
            if node.op != "LSTM" or not a.get("quantized_state") or a.get("weights") != "int8" \
                    or not ins[2] or not g.values[ins[2]].is_const or a["batch"] != 1 or n % (LANES * NV):
                nodes.append(node)
                continue
            quads, colsum = recurrent_quads(g.values[ins[2]].data, a["directions"], n, a["hidden"], a["panel"])
            ins[QUADS] = g.add_const(f"{ins[2]}_quads", quads)
            ins[COLSUM] = g.add_const(f"{ins[2]}_colsum", colsum.astype(np.int32))
            node.inputs = ins
            a["recurrent_dot"] = "vnni"
            gemm = _projection(g, node, profile, producers)
            if gemm is not None:
                nodes.append(gemm)
            nodes.append(node)
        g.nodes = nodes
        return g

    return run


def _projection(g: Graph, node: Node, profile: TargetProfile, producers: dict[str, Node]) -> Node | None:
    """The input projection W x on byte dots too, where x is DequantizeLinear(q, scale, zp) of
    uint8 bytes (DynamicQuantizeLSTM's input sequence): a QGemmDot q x W (int32 [T, B, D*N],
    packed columns of every direction) that the LSTM scales per column (inputs 16, 17; attr
    `projected`). The float GEMM it replaces did 4x the instructions per MAC."""
    a = node.attrs
    dq = producers.get(node.inputs[0])
    wt = g.values[node.inputs[1]] if node.inputs[1] else None
    if dq is None or dq.op != "DequantizeLinear" or wt is None or not wt.is_const or wt.dtype != np.int8:
        return None
    q, qs, qz = (dq.inputs + ["", "", ""])[:3]
    if g.values[q].dtype != np.uint8 or not qs or g.values[qs].size != 1 or (qz and g.values[qz].size != 1):
        return None  # per-tensor parameters only
    d, n, i = a["directions"], a["gates"] * a["hidden_padded"], a["input_size"]
    p = a["panel"]
    w = wt.data.reshape(d, n // p, i, p).transpose(2, 0, 1, 3).reshape(i, d * n)  # [I][D*N]
    acc = g.fresh(f"{node.outputs[0]}_projected")
    g.values[acc] = Value(acc, np.dtype(np.int32), (*g.values[q].shape[:-1], d * n))
    gemm = qgemm_node(g, q, qz, g.add_const(f"{node.inputs[1]}_cols", np.ascontiguousarray(w)), acc, profile,
                      f"{node.name or acc}_projection")
    if gemm is None:
        return None
    node.inputs = node.inputs + [""] * (XSCALE + 1 - len(node.inputs))
    node.inputs[PROJ], node.inputs[XSCALE] = acc, qs
    a["projected"] = True
    return gemm

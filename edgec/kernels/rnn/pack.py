"""Target pass `pack-rnn`: GRU/LSTM/RNN weights from their ONNX layout into the kernel's packed
layout (edgec/kernels/rnn/layout.py). Node inputs go from [X, W, R, B, h0, c0, P, seq] to
[X, Wt, Rt, bx, br, h0, c0, P, seq]: constant weights are packed here with numpy, weights fed at
run time by an `RNNPack` node in front of the RNN that applies the same index table. Runs first
among the target passes: sparsify-rnn and quantize-weights read the packed layout."""

from __future__ import annotations

import numpy as np

from edgec.ir.graph import Graph, Node, Value
from edgec.kernels.rnn import layout as lay

RNN_OPS = ("GRU", "LSTM", "RNN")


def _packed(g: Graph, nodes: list[Node], src: str, tables: list[np.ndarray], hint: str) -> str:
    """`src` in a packed layout: folded now when constant, else an RNNPack node."""
    v = g.values[src]
    if v.is_const:
        return g.add_const(hint, lay.apply_table(v.data, *tables))
    idx = [g.add_const(f"{hint}_idx", t) for t in tables]
    out = g.fresh(hint)
    g.values[out] = Value(out, np.dtype(np.float32), tuple(int(d) for d in tables[0].shape))
    nodes.append(Node("RNNPack", [src, *idx], [out], {}, hint))
    return out


def pack_rnn(g: Graph) -> Graph:
    nodes: list[Node] = []
    for n in g.nodes:
        if n.op not in RNN_OPS:
            nodes.append(n)
            continue
        a = n.attrs
        d, gates, h, hp = a["directions"], a["gates"], a["hidden"], a["hidden_padded"]
        x, w, r, b, h0, c0, pp, seq = n.inputs
        name = n.name or n.outputs[0] or n.op.lower()
        wt = _packed(g, nodes, w, [lay.matrix_table(d, gates, h, a["input_size"])], f"{name}_Wt")
        rt = _packed(g, nodes, r, [lay.matrix_table(d, gates, h, h)], f"{name}_Rt")
        bx1, bx2, br1 = lay.bias_tables(d, gates, h, 2 if a["linear_before_reset"] else None)
        if b:
            bx = _packed(g, nodes, b, [bx1, bx2], f"{name}_bx")
            br = _packed(g, nodes, b, [br1], f"{name}_br")
        else:
            bx = br = g.add_const(f"{name}_bias0", np.zeros((d, gates * hp), np.float32))
        if pp:
            pp = _packed(g, nodes, pp, [lay.peephole_table(d, h)], f"{name}_P")
        n.inputs = [x, wt, rt, bx, br, h0, c0, pp, seq]
        nodes.append(n)
    g.nodes = nodes
    return g

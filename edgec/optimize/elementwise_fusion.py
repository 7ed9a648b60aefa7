"""Target pass `fuse-elementwise`: chains of float elementwise ops become one loop.

GELU written out (Div, Erf, Add, Mul, Mul), Swish (Sigmoid, Mul), scale-and-shift chains: each
op on its own reads and writes a whole tensor; fused, every element is loaded once, goes through
the chain in registers and is stored once (tinygrad's elementwise fusion, in one small pass).
A value joins its consumer's loop when that consumer is its only reader, it is not a graph
output, and it has the chain's full output shape (side inputs may broadcast). The fused node
`FusedElementwise` carries the chain as a small program: steps of (op, operands, attrs), an
operand being ("in", k) for the node's k-th input or ("t", j) for step j's result
(edgec/kernels/generic/fused_elementwise.py runs it).

Per-tensor DequantizeLinear and QuantizeLinear with constant parameters join too (their scale
and zero point become step attributes): the float islands an int8 model keeps between integer
kernels (an SE block's x * gate, a residual Mul) then read and write int8 in one pass instead of
three (DQ, op, Q).
"""

from __future__ import annotations

import numpy as np

from edgec.codegen.activations import FLOAT_UNARY
from edgec.ir.graph import Graph, Node

BINARY = {"Add", "Sub", "Mul", "Div", "Max", "Min", "PRelu"}
UNARY = set(FLOAT_UNARY)


QDQ = {"QuantizeLinear", "DequantizeLinear"}
FLOATS = (np.dtype(np.float32), np.dtype(np.float16))


def _qdq_params(g: Graph, n: Node) -> dict | None:
    """{scale, zero_point, dtype} of a per-tensor Q/DQ with constant parameters, else None."""
    if len(n.inputs) < 2 or len(n.outputs) != 1 or n.attrs.get("block_size"):
        return None
    s = g.values[n.inputs[1]]
    z = g.values[n.inputs[2]] if len(n.inputs) > 2 and n.inputs[2] else None
    if not s.is_const or s.size != 1 or (z is not None and (not z.is_const or z.size != 1)):
        return None
    q = g.values[n.outputs[0] if n.op == "QuantizeLinear" else n.inputs[0]]
    f = g.values[n.inputs[0] if n.op == "QuantizeLinear" else n.outputs[0]]
    if q.dtype not in (np.uint8, np.int8) or f.dtype != np.float32 or s.dtype != np.float32:
        return None
    return {"scale": float(s.data.reshape(-1)[0]), "zero_point": int(z.data.reshape(-1)[0]) if z is not None else 0,
            "dtype": np.dtype(q.dtype).name}


def _eligible(g: Graph, n: Node) -> bool:
    if n.op in QDQ:
        return _qdq_params(g, n) is not None
    if n.op not in BINARY | UNARY or len(n.outputs) != 1 or not n.outputs[0]:
        return False
    if len(n.inputs) != (2 if n.op in BINARY else 1):  # (a Clip with min/max inputs stays alone)
        return False
    # fp16 too (`--precision fp16`, fp16 models): the fused loop widens each input on load,
    # runs the chain in fp32 and rounds once at the store (each op alone rounds its result)
    vals = [g.values[i] for i in n.inputs if i] + [g.values[n.outputs[0]]]
    return any(all(v.dtype == t for v in vals) for t in FLOATS)


def fuse_elementwise(g: Graph) -> Graph:
    uses = g.consumers()
    group_of: dict[int, list[Node]] = {}  # id(node) -> its group (shared list)
    producer = {o: n for n in g.nodes for o in n.outputs}
    order = {id(n): k for k, n in enumerate(g.nodes)}
    for n in g.nodes:
        if not _eligible(g, n):
            continue
        shape = g.values[n.outputs[0]].shape
        group = [n]
        for i in dict.fromkeys(x for x in n.inputs if x):
            p = producer.get(i)
            if p is None or id(p) not in group_of or uses.get(i) != [n] or i in g.outputs \
                    or g.values[i].shape != shape:
                continue
            # p's chain ends at p (its only reader is n): the chains are disjoint, join them
            group = group_of[id(p)] + group
        group.sort(key=lambda m: order[id(m)])  # a topological order: the original one
        for m in group:
            group_of[id(m)] = group
    fused: dict[int, Node] = {}
    for group in {id(v): v for v in group_of.values()}.values():
        if len(group) > 1 and any(m.op not in QDQ for m in group):
            fused[id(group[-1])] = _fuse(g, group)
    drop = {id(m) for group in group_of.values() if id(group[-1]) in fused for m in group[:-1]}
    g.nodes = [fused.get(id(n), n) for n in g.nodes if id(n) not in drop]
    return g


def _fuse(g: Graph, group: list[Node]) -> Node:
    inside = {n.outputs[0]: k for k, n in enumerate(group)}
    inputs: list[str] = []
    program = []
    for n in group:
        operands = []
        attrs = dict(n.attrs)
        if n.op in QDQ:  # only the data input: the parameters are constants, kept as attributes
            attrs = _qdq_params(g, n)
        for i in n.inputs[:1] if n.op in QDQ else n.inputs:
            if i in inside and inside[i] < len(program):
                operands.append(("t", inside[i]))
            else:
                if i not in inputs:
                    inputs.append(i)
                operands.append(("in", inputs.index(i)))
        program.append((n.op, operands, attrs))
    return Node("FusedElementwise", inputs, [group[-1].outputs[0]], {"program": program},
                "+".join(n.name or n.op for n in group))

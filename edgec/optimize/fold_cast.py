"""Target pass `fold-cast-into-pad`: a float Cast whose only consumer is a Pad becomes part of
that Pad, which then reads the wider (or narrower) type and rounds as it copies
(edgec/kernels/generic/gather_copy.py, `_Emitter.move`).

`--precision fp16` casts a model's fp32 input to fp16 at the graph's border, and a CNN's stem
conv pads that input first (ConvOcvec does not pad by itself). Cast then Pad read and wrote the
image twice: 1.3 ms of the PP-OCR det's 37 ms on rpi5 by the cycle model, and the Pad alone half
of it. One converting Pad moves it once.
"""

from __future__ import annotations

import numpy as np

from edgec.ir.graph import Graph

FLOATS = (np.dtype(np.float16), np.dtype(np.float32))


def fold_cast_into_pad(g: Graph) -> Graph:
    consumers = g.consumers()
    outputs = set(g.outputs)
    dropped: set[int] = set()
    for n in g.nodes:
        if n.op != "Cast" or n.outputs[0] in outputs:
            continue
        src, dst = g.values[n.inputs[0]], g.values[n.outputs[0]]
        users = consumers.get(dst.name, [])
        if (src.dtype not in FLOATS or dst.dtype not in FLOATS or src.is_const or len(users) != 1
                or users[0].op != "Pad" or users[0].inputs[0] != dst.name
                or any(i == dst.name for i in users[0].inputs[1:])):
            continue
        users[0].inputs[0] = src.name
        dropped.add(id(n))
        del g.values[dst.name]
    g.nodes = [n for n in g.nodes if id(n) not in dropped]
    return g

"""Target pass `sparsify-dense`: a batch-1 MatMul(x[1, K], const W[K, N]) (+ bias, + fused
activation) whose weight has zero blocks becomes `SparseDense` when the cost rule
(edgec/sparsity/cost.py) prefers a sparse format. The decision is the node attribute `sparse`
(visible in --dump-ir); dense layers keep their MatMul with the same attribute."""

from __future__ import annotations

import numpy as np

from edgec.ir.graph import Graph, Node
from edgec.kernels.gemv.pack import batch1_dense
from edgec.kernels.sparse.spec import InlineWeights
from edgec.options import SparseOptions
from edgec.sparsity.blocks import analyze, bsr_pack
from edgec.sparsity.cost import BSR_UNROLL, block_width, choose, max_tile, tiles
from edgec.targets import TargetProfile


def sparsify_dense(profile: TargetProfile, opts: SparseOptions):  # noqa: ANN201 - returns a Pass
    bw = block_width(profile)

    def run(g: Graph) -> Graph:
        if opts.mode == "off":
            return g
        nodes: list[Node] = []
        for n in g.nodes:
            if not batch1_dense(g, n):
                nodes.append(n)
                continue
            w = g.values[n.inputs[1]].data
            w = w.T if n.attrs.get("trans_b") else w
            if opts.threshold == 0.0 and np.all(w != 0):  # the common dense case: no analysis
                nodes.append(n)
                continue
            bm = analyze(w, bw, opts.threshold)
            choice = choose(bm, profile, opts)
            if choice.format == "dense":
                n.attrs["sparse"] = choice.to_attr()
                nodes.append(n)
                continue
            bias = np.zeros(bm.nvec * bw, np.float32)
            if len(n.inputs) > 2 and n.inputs[2]:
                bias[:bm.n] = g.values[n.inputs[2]].data.reshape(-1)
            attrs = {"sparse": choice.to_attr(), "k": bm.k, "n": bm.n, "bw": bw,
                     "tiles": tiles(bm.nvec, max_tile(profile)), "activation": n.attrs.get("activation")}
            out = n.outputs[0]
            if choice.format == "code":
                attrs["weights"] = InlineWeights(bm, bias)
                inputs = [n.inputs[0]]
            else:
                ptr, kidx, vals = bsr_pack(bm, BSR_UNROLL)
                attrs["unroll"] = BSR_UNROLL
                inputs = [n.inputs[0], g.add_const(f"{out}_bsr_values", vals),
                          g.add_const(f"{out}_bsr_kidx", kidx), g.add_const(f"{out}_bsr_ptr", ptr),
                          g.add_const(f"{out}_bsr_bias", bias)]
            nodes.append(Node("SparseDense", inputs, list(n.outputs), attrs, n.name))
        g.nodes = nodes
        return g

    return run

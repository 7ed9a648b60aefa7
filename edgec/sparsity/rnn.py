"""Target pass `sparsify-rnn`: the recurrent weight R of a fused GRU / LSTM / RNN node, when
constant and with zero 1x8 blocks, is read block-sparse (zero blocks never loaded) when the
per-layer cost rule of edgec/sparsity/cost.py prefers BSR over the dense panels. The build flags
apply as for `SparseDense`: `--sparsity off` keeps R dense, `--sparsity bsr|code` forces BSR
(the recurrences have no weights-in-code kernel), `--sparse-threshold` counts |w| <= t as zero.
The decision is the node attribute `sparse` (visible in --dump-ir); a node whose R has no zero
block is not analyzed and gets no attribute, like a dense MatMul."""

from __future__ import annotations

import numpy as np

from edgec.ir.graph import Graph
from edgec.kernels.rnn import layout as lay
from edgec.options import SparseOptions
from edgec.sparsity.blocks import BlockMatrix
from edgec.sparsity.cost import choose
from edgec.targets import TargetProfile

RNN_OPS = ("GRU", "LSTM", "RNN")
R_INPUT = 2  # IR inputs: [X, Wt, Rt, bx, br, initial_h, initial_c, P, sequence_lens, (Rptr, Ridx, Rval)]


def recurrent_matrix(blocks: np.ndarray, nz: np.ndarray, real: np.ndarray) -> BlockMatrix:
    """The real (non-padding) 1x8 block columns of all directions side by side, as the cost
    rule's K x N matrix (K = hidden size)."""
    d, k, _, bw = blocks.shape
    w = blocks[:, :, real, :].transpose(1, 0, 2, 3).reshape(k, -1)
    mask = nz[:, :, real].transpose(1, 0, 2).reshape(k, -1)
    return BlockMatrix(np.ascontiguousarray(w), np.ascontiguousarray(mask), int(w.shape[1]), bw)


def sparsify_rnn(profile: TargetProfile, opts: SparseOptions):  # noqa: ANN201 - returns a Pass
    def run(g: Graph) -> Graph:
        for n in g.nodes:
            if n.op not in RNN_OPS or len(n.inputs) != 9 or not n.inputs[R_INPUT]:
                continue
            rt = g.values[n.inputs[R_INPUT]]
            if not rt.is_const:
                continue
            a = n.attrs
            blocks, nz, real = lay.recurrent_blocks(rt.data, a["directions"], a["gates"], a["hidden"],
                                                    opts.threshold)
            bm = recurrent_matrix(blocks, nz, real)
            if bm.nnz_blocks == bm.mask.size:  # no zero block: nothing to decide
                continue
            if opts.mode == "off":
                n.attrs["sparse"] = {"format": "dense", "density": round(bm.density, 4),
                                     "blocks": f"1x{bm.bw}", "reason": "--sparsity off"}
                continue
            choice = choose(bm, profile, opts, code=False)
            n.attrs["sparse"] = choice.to_attr()
            if choice.format != "bsr":
                continue
            name = n.name or n.outputs[0]
            ptr, idx, val = lay.bsr_rows(blocks, nz)
            n.inputs[R_INPUT] = ""
            n.inputs += [g.add_const(f"{name}_Rptr", ptr), g.add_const(f"{name}_Ridx", idx),
                         g.add_const(f"{name}_Rval", val)]
        return g

    return run

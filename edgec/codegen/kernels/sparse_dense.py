"""`SparseDense`: y[1, N] = act(x[1, K] @ W + bias) for a block-sparse constant W (made by the
`sparsify-dense` pass, edgec/sparsity/transform.py). Two formats:

- weights in code (this file): straight-line code per column tile of T output vectors held in
  registers. For every input row k with a non-zero block in the tile, x[k] is loaded and
  broadcast once, then each non-zero 1 x BW block is one FMA whose weight operand is an LLVM
  constant vector (a constant-pool operand of the FMA on x86, a literal-pool load next to
  `fmla` on ARM). Zero blocks emit nothing; the bias is the accumulators' constant initial value.
- BSR (edgec/codegen/kernels/sparse_bsr.py): a compact loop over a block index array, values
  read from the weight blob; used for layers whose code would be too big.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.kernels.conv_direct import vector_activation
from edgec.codegen.vector import Vec


def const_vector(vec: Vec, values: np.ndarray) -> ir.Constant:
    return ir.Constant(vec.ty, [float(v) for v in values])


def _opaque(kc: KernelContext, ptr: ir.Value, tag: int) -> ir.Value:
    """`ptr` through an empty inline asm (a different one per tile): LLVM can no longer prove
    two tiles load the same x[k], so it does not keep 256 broadcasts live across tiles (which
    spills nearly every one of them to the stack)."""
    return kc.b.asm(ir.FunctionType(ptr.type, [ptr.type, kc.isize]), "", "=r,0,r",
                    [ptr, kc.idx(tag)], False, name=f"x.tile{tag}")


def lower_inline(kc: KernelContext) -> None:
    iw = kc.attrs["weights"]
    bm, bw = iw.bm, kc.attrs["bw"]
    vec = Vec(kc.b, bw)
    x, y = kc.inputs[0], kc.outputs[0]
    act = kc.attrs.get("activation")
    for t, (v0, v1) in enumerate(kc.attrs["tiles"]):
        xp = _opaque(kc, kc.ptr(x), t)
        accs: dict[int, ir.Value] = {v: const_vector(vec, iw.bias[v * bw:(v + 1) * bw]) for v in range(v0, v1)}
        sub = bm.mask[:, v0:v1]
        for k in np.flatnonzero(sub.any(axis=1)).tolist():
            xb = vec.splat(kc.b.load(kc.b.gep(xp, [kc.idx(k)], inbounds=True)))  # once per block row
            for v in (v0 + np.flatnonzero(sub[k])).tolist():
                accs[v] = vec.fma(xb, const_vector(vec, bm.block(k, v)), accs[v])
        for v in range(v0, v1):
            count = min(bw, bm.n - v * bw)
            vec.store_lanes(vector_activation(kc.b, accs[v], act, bw), kc.gep(y, v * bw), count)


@lowering("SparseDense")
def lower_sparse_dense(kc: KernelContext) -> None:
    if "weights" in kc.attrs:
        lower_inline(kc)
    else:
        from edgec.codegen.kernels.sparse_bsr import lower_bsr

        lower_bsr(kc)

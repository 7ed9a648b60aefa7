"""`SparseDense`: y[1, N] = act(x[1, K] @ W + bias) for a block-sparse constant W (made by the
`sparsify-dense` pass, edgec/sparsity/transform.py). Two formats:

- weights in code (this file): straight-line code per column tile of T output vectors held in
  registers. For every input row k with a non-zero block in the tile, x[k] is loaded and
  broadcast once, then each non-zero 1 x BW block is one FMA whose weight operand is an LLVM
  constant vector (a constant-pool operand of the FMA on x86, a literal-pool load next to
  `fmla` on ARM). Zero blocks emit nothing; the bias is the accumulators' constant initial value.
- BSR (edgec/kernels/sparse/lower_bsr.py): a compact loop over a block index array, values
  read from the weight blob; used for layers whose code would be too big.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from edgec.codegen.common import vector_activation
from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.types import F32
from edgec.codegen.vector import Vec


def const_vector(vec: Vec, values: np.ndarray) -> ir.Constant:
    return ir.Constant(vec.ty, [float(v) for v in values])


def _opaque(kc: KernelContext, ptr: ir.Value, tag: int) -> ir.Value:
    """`ptr` through an empty inline asm (a different one per tile): LLVM can no longer prove
    two tiles load the same x[k], so it does not keep 256 broadcasts live across tiles (which
    spills nearly every one of them to the stack)."""
    return kc.b.asm(ir.FunctionType(ptr.type, [ptr.type, kc.isize]), "", "=r,0,r",
                    [ptr, kc.idx(tag)], False, name=f"x.tile{tag}")


def _use_order(bm, tile_list: list[tuple[int, int]]) -> list[tuple[int, int]]:  # noqa: ANN001
    """(k, v) of every non-zero block in the order the straight-line code uses them."""
    order = []
    for v0, v1 in tile_list:
        sub = bm.mask[:, v0:v1]
        for k in np.flatnonzero(sub.any(axis=1)).tolist():
            order += [(k, v) for v in (v0 + np.flatnonzero(sub[k])).tolist()]
    return order


def _block_table(kc: KernelContext, vec: Vec, blocks: np.ndarray) -> ir.GlobalVariable:
    """The non-zero blocks as one private constant array in use order: the kernel streams it
    front to back (whole cache lines, prefetcher-friendly), where LLVM's constant pool would
    scatter the 32-byte constants in instruction-selection order."""
    aty = ir.ArrayType(vec.ty, len(blocks))
    g = ir.GlobalVariable(kc.module, aty, f"{kc.fn.name}.blocks")
    g.linkage = "internal"
    g.global_constant = True
    g.initializer = ir.Constant(aty, [const_vector(vec, blk) for blk in blocks])
    g.align = 64
    return g


def lower_inline(kc: KernelContext) -> None:
    iw = kc.attrs["weights"]
    bm, bw = iw.bm, kc.attrs["bw"]
    vec = Vec(kc.b, bw)
    x, y = kc.inputs[0], kc.outputs[0]
    act = kc.attrs.get("activation")
    order = _use_order(bm, kc.attrs["tiles"])
    table = _block_table(kc, vec, np.array([bm.block(k, v) for k, v in order]).reshape(-1, bw)) \
        if order else None
    # the table's address through the same empty asm: LLVM would fold loads from a constant
    # global back into (scattered) constant-pool entries
    base = kc.b.bitcast(table, F32.as_pointer()) if table is not None else None
    used = 0
    for t, (v0, v1) in enumerate(kc.attrs["tiles"]):
        xp = _opaque(kc, kc.ptr(x), t)
        wt = _opaque(kc, base, t) if base is not None else None
        accs: dict[int, ir.Value] = {v: const_vector(vec, iw.bias[v * bw:(v + 1) * bw]) for v in range(v0, v1)}
        sub = bm.mask[:, v0:v1]
        for k in np.flatnonzero(sub.any(axis=1)).tolist():
            xb = vec.splat(kc.b.load(kc.b.gep(xp, [kc.idx(k)], inbounds=True)))  # once per block row
            for v in (v0 + np.flatnonzero(sub[k])).tolist():
                wp = kc.b.bitcast(kc.b.gep(wt, [kc.idx(used * bw)], inbounds=True), vec.ty.as_pointer())
                accs[v] = vec.fma(xb, kc.b.load(wp, align=32), accs[v])
                used += 1
        for v in range(v0, v1):
            count = min(bw, bm.n - v * bw)
            vec.store_lanes(vector_activation(kc.b, accs[v], act, bw), kc.gep(y, v * bw), count)


@lowering("SparseDense")
def lower_sparse_dense(kc: KernelContext) -> None:
    if "weights" in kc.attrs:
        lower_inline(kc)
    else:
        from edgec.kernels.sparse.lower_bsr import lower_bsr

        lower_bsr(kc)

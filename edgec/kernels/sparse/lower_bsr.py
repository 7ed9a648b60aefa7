"""BSR variant of `SparseDense` (see sparse_dense.py): for each output vector v (BW outputs),
blocks ptr[v] .. ptr[v+1] hold an input index kidx[p] and BW values vals[p] (packed at build
time, each column padded to a multiple of `unroll` with zero blocks). The inner loop is unrolled
`unroll` times into independent accumulators (FMA latency), summed at the end, plus bias and the
fused activation. Code size does not depend on the weights."""

from __future__ import annotations

from llvmlite import ir

from edgec.codegen.common import vector_activation
from edgec.codegen.kernel import KernelContext
from edgec.codegen.loops import for_range_carried
from edgec.codegen.mathfn import FM
from edgec.codegen.vector import Vec


def lower_bsr(kc: KernelContext) -> None:
    b = kc.b
    x, vals, kidx, ptr, bias = kc.inputs[:5]
    y = kc.outputs[0]
    bw, n, unroll = kc.attrs["bw"], kc.attrs["n"], kc.attrs["unroll"]
    vec = Vec(b, bw)
    act = kc.attrs.get("activation")

    def to_index(v: ir.Value) -> ir.Value:
        return b.sext(v, kc.isize) if kc.isize.width > 32 else v

    def step(p: ir.Value, accs: list[ir.Value]) -> list[ir.Value]:
        out = []
        for u, acc in enumerate(accs):
            q = b.add(p, kc.idx(u))
            xb = vec.splat(kc.load(x, to_index(kc.load(kidx, q))))
            out.append(vec.fma(xb, vec.load(kc.gep(vals, b.mul(q, kc.idx(bw)))), acc))
        return out

    def column(v: ir.Value, count: int) -> None:
        start, end = to_index(kc.load(ptr, v)), to_index(kc.load(ptr, b.add(v, kc.idx(1))))
        with for_range_carried(b, end, kc.isize, [vec.zeros()] * unroll, name="bsr", start=start,
                               step=unroll) as lp:
            lp.next = step(lp.index, list(lp.values))
        accs = lp.values
        while len(accs) > 1:  # pairwise sum of the partial accumulators
            accs = [b.fadd(accs[i], accs[i + 1], flags=FM) if i + 1 < len(accs) else accs[i]
                    for i in range(0, len(accs), 2)]
        off = b.mul(v, kc.idx(bw))
        acc = b.fadd(accs[0], vec.load(kc.gep(bias, off)), flags=FM)
        vec.store_lanes(vector_activation(b, acc, act, bw), kc.gep(y, off), count)

    full, tail = divmod(n, bw)
    with kc.loop(full, "v") as v:
        column(v, bw)
    if tail:
        column(kc.idx(full), tail)

"""`Gemv(x, Wp, bias)`: batch-1 dense layer y[n] = bias[n] + sum_k x[k] * W[k, n], fp32.

Set by the target pass `prepare-gemv` (edgec/kernels/gemv/pack.py), which packs W at build time as
[column block][k][NB] with NB = NV vectors of columns (zero-padded), so one block's weights are
one contiguous stream in exactly the order the loop reads them. Per block: KA sets of NV vector
accumulators (independent FMA chains hide FMA latency), the k loop unrolled KU times (step u
feeds set u % KA), one broadcast of x[k] per step; the sets are summed, then bias (already in
set 0) and the fused activation, and stored (lane by lane in the tail block). Threads split the
column blocks. Knobs: `GemvSchedule` (tuned by edgec.tune).
`--weights int8|fp16` (edgec/optimize/weight_quant.py): Wp is int8 or fp16, widened on load;
int8 adds a 4th input, the per-column scales, applied once to the summed accumulators before
the bias (accumulators then start at zero).
"""

from __future__ import annotations

from edgec.codegen.common import vector_activation
from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.loops import for_range_carried
from edgec.codegen.mathfn import FM
from edgec.codegen.vector import Vec
from edgec.kernels.gemv.tuning import GemvSchedule
from edgec.kernels.generic.weight_load import load_weights


@lowering("Gemv")
def lower_gemv(kc: KernelContext) -> None:
    x, wp, bias = kc.inputs[:3]
    y = kc.outputs[0]
    k_, n_ = kc.attrs["k"], kc.attrs["n"]
    s = GemvSchedule(**kc.attrs["schedule"])
    lanes, nv, ku, ka = s.lanes, s.nv, s.ku, s.ka
    nb = nv * lanes
    vec = Vec(kc.b, lanes)
    b = kc.b
    act = kc.attrs.get("activation")
    scale = kc.inputs[3] if kc.attrs.get("weights") == "int8" else None
    # armv7: the KU inputs of a step as lanes of one vector load (vmla.f32 by scalar,
    # Vec.splats) instead of KU dup loads: 4x2x2 fits the 16 q registers only so.
    by_lane = kc.target.arch == "armv7"

    def block(blk, width: int) -> None:  # noqa: ANN001 - an index value or a constant
        blk = kc.idx(blk) if isinstance(blk, int) else blk
        base = b.mul(blk, kc.idx(k_ * nb))
        zero = vec.zeros()
        col0 = b.mul(blk, kc.idx(nb))
        init = [zero if scale else vec.load(kc.gep(bias, b.add(col0, kc.idx(v * lanes)))) for v in range(nv)]
        init += [zero] * (nv * (ka - 1))

        def steps(acc: list, k0, count: int) -> list:  # noqa: ANN001
            acc = list(acc)
            for u, xs in enumerate(vec.splats(kc.gep(x, k0), count, by_lane)):
                kk = b.add(k0, kc.idx(u)) if u else k0
                row = b.add(base, b.mul(kk, kc.idx(nb)))
                st = u % ka
                for v in range(nv):
                    w = load_weights(b, kc.gep(wp, b.add(row, kc.idx(v * lanes))), lanes)
                    acc[st * nv + v] = vec.fma(xs, w, acc[st * nv + v])
            return acc

        full, tail = divmod(k_, ku)
        acc = init
        if full:
            with for_range_carried(b, full, kc.isize, init, "k") as loop:
                loop.next = steps(loop.values, b.mul(loop.index, kc.idx(ku)), ku)
            acc = loop.values
        if tail:
            acc = steps(acc, kc.idx(full * ku), tail)
        sets = [acc[st * nv:(st + 1) * nv] for st in range(ka)]
        while len(sets) > 1:  # pairwise sum of the accumulator sets
            nxt = [[b.fadd(p, q, flags=FM) for p, q in zip(sets[i], sets[i + 1])]
                   for i in range(0, len(sets) - 1, 2)]
            sets = nxt + ([sets[-1]] if len(sets) % 2 else [])
        for v in range(nv):
            count = min(lanes, width - v * lanes)
            if count <= 0:
                break
            val = sets[0][v]
            if scale:
                at = b.add(col0, kc.idx(v * lanes))
                val = vec.fma(val, vec.load(kc.gep(scale, at)), vec.load(kc.gep(bias, at)))
            val = vector_activation(b, val, act, lanes)
            vec.store_lanes(val, kc.gep(y, b.add(col0, kc.idx(v * lanes))), count)

    full_blocks, rem = divmod(n_, nb)
    if full_blocks:
        t0, t1 = kc.task_range(full_blocks)
        with kc.loop(t1, "blk", start=t0) as blk:
            block(blk, nb)
    if rem:
        with b.if_then(kc.is_last_task()):
            block(full_blocks, rem)

"""TopK by insertion: each row's k best so far live in the outputs, sorted; every element of
the row is carried down that list, swapping with each entry it beats (a larger value, or an
equal one with a larger index: onnxruntime's tie rule is index order). O(n * k) compares per row, for the small k of
classifier heads and detectors. An index of -1 marks a slot not filled yet."""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.types import is_float, is_signed


@lowering("TopK")
def lower_topk(kc: KernelContext) -> None:
    x, (vals, idxs) = kc.inputs[0], kc.outputs[:2]
    axis, k, largest = kc.attrs["axis"], kc.attrs["k"], kc.attrs["largest"]
    shape = kc.shape(x)
    n = shape[axis]
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    if k == 0 or outer * inner == 0:
        return
    b, dt = kc.b, kc.dtype(x)
    vty = kc.const(dt, 0).type
    ity = kc.const(np.dtype(np.int64), 0).type
    op = ">" if largest else "<"

    def beats(u, ui, w, wi):  # noqa: ANN001, ANN202
        """u (index ui) goes before w (index wi): better, or equal with a smaller index (a
        displaced entry carried down must pass the equal ones that came after it)."""
        if is_float(dt):
            better, equal = b.fcmp_ordered(op, u, w), b.fcmp_ordered("==", u, w)
        else:
            cmp = b.icmp_signed if is_signed(dt) else b.icmp_unsigned
            better, equal = cmp(op, u, w), b.icmp_signed("==", u, w)
        return b.or_(better, b.and_(equal, b.icmp_signed("<", ui, wi)))

    def widen(v):  # noqa: ANN001, ANN202
        return b.sext(v, ity) if v.type.width < ity.width else v

    with b.goto_entry_block():
        cv, ci = b.alloca(vty, name="cv"), b.alloca(ity, name="ci")
    with kc.loop(outer, "o") as o, kc.loop(inner, "q") as q:
        base = kc.linear([o, q], [n * inner, 1])
        obase = kc.linear([o, q], [k * inner, 1])
        with kc.loop(k, "init") as j:
            kc.store(idxs, b.add(obase, b.mul(j, kc.idx(inner))), ir.Constant(ity, -1))
            kc.store(vals, b.add(obase, b.mul(j, kc.idx(inner))), kc.const(dt, 0))
        with kc.loop(n, "i") as i:
            b.store(kc.load(x, b.add(base, b.mul(i, kc.idx(inner)))), cv)
            b.store(widen(i), ci)
            with kc.loop(k, "j") as j:
                at = b.add(obase, b.mul(j, kc.idx(inner)))
                v, iv = b.load(cv), b.load(ci)
                ov, oi = kc.load(vals, at), kc.load(idxs, at)
                empty = b.icmp_signed("<", oi, ir.Constant(ity, 0))
                live = b.icmp_signed(">=", iv, ir.Constant(ity, 0))
                swap = b.and_(live, b.or_(empty, beats(v, iv, ov, oi)))
                kc.store(vals, at, b.select(swap, v, ov))
                kc.store(idxs, at, b.select(swap, iv, oi))
                b.store(b.select(swap, ov, v), cv)
                b.store(b.select(swap, oi, iv), ci)

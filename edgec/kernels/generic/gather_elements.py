"""GatherElements: out[i] = data[i with its `axis` coordinate replaced by indices[i]].

One loop per output axis; the index is read at run time (constant indices are just a constant
tensor), wrapped once if negative and clamped, so a bad index cannot read outside `data`.
"""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np

from edgec.codegen.broadcast import contiguous_strides
from edgec.codegen.kernel import KernelContext, lowering


@lowering("GatherElements")
def lower_gather_elements(kc: KernelContext) -> None:
    data, indices, y = kc.inputs[0], kc.inputs[1], kc.outputs[0]
    axis = kc.attrs["axis"]
    shape, dshape = kc.shape(indices), kc.shape(data)
    if int(np.prod(shape, dtype=np.int64)) == 0:
        return
    b, isz, n = kc.b, kc.isize, dshape[axis]
    src_st, dst_st = contiguous_strides(dshape), contiguous_strides(shape)
    with ExitStack() as loops:
        idx = [loops.enter_context(kc.loop(d, name=f"g{k}")) for k, d in enumerate(shape)]
        at = kc.linear(idx, dst_st)
        k = kc.load(indices, at)
        k = b.sext(k, isz) if k.type.width < isz.width else (
            b.trunc(k, isz) if k.type.width > isz.width else k)
        k = b.select(b.icmp_signed("<", k, kc.idx(0)), b.add(k, kc.idx(n)), k)
        k = b.select(b.icmp_signed("<", k, kc.idx(0)), kc.idx(0), k)
        k = b.select(b.icmp_signed(">", k, kc.idx(n - 1)), kc.idx(n - 1), k)
        src = kc.linear([k if j == axis else v for j, v in enumerate(idx)], src_st)
        kc.store(y, at, kc.load(data, src))

"""Concat and Split: block copies between one big tensor and its pieces along an axis.

Each piece is one gather-copy with identity tables; the destination (Concat) or source (Split)
offsets select the piece's slab. Axes before `axis` stay outer loops, the rest merge into one
contiguous inner copy.
"""

from __future__ import annotations

from edgec.codegen.broadcast import contiguous_strides
from edgec.codegen.kernel import KernelContext, lowering
from edgec.kernels.generic.gather_copy import affine_table, emit_gather_copy


@lowering("Concat")
def lower_concat(kc: KernelContext) -> None:
    y, axis = kc.outputs[0], kc.attrs["axis"]
    out_strides = contiguous_strides(kc.shape(y))
    pos = 0
    aliased = kc.attrs.get("alias_inputs") or [False] * len(kc.inputs)
    for x, in_place in zip(kc.inputs, aliased):
        shape = kc.shape(x)
        if in_place:  # its producer already wrote it into this slab (memory_plan.alias_concat_inputs)
            pos += shape[axis]
            continue
        tables = [affine_table(n, s) for n, s in zip(shape, contiguous_strides(shape))]
        emit_gather_copy(kc, x, y, tables, dst_strides=out_strides,
                         dst_offset=pos * out_strides[axis])
        pos += shape[axis]


@lowering("Split")
def lower_split(kc: KernelContext) -> None:
    x, axis = kc.inputs[0], kc.attrs["axis"]
    in_strides = contiguous_strides(kc.shape(x))
    pos = 0
    for y in kc.outputs:
        shape = kc.shape(y)
        tables = [affine_table(n, s, pos if d == axis else 0)
                  for d, (n, s) in enumerate(zip(shape, in_strides))]
        emit_gather_copy(kc, x, y, tables)
        pos += shape[axis]

"""Broadcast strides and dimension collapsing shared by elementwise-style kernels."""

from __future__ import annotations

from collections.abc import Sequence


def contiguous_strides(shape: Sequence[int]) -> list[int]:
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    return strides[::-1]


def broadcast_strides(in_shape: Sequence[int], out_shape: Sequence[int]) -> list[int]:
    """Element strides of `in_shape` read as if broadcast to `out_shape` (numpy rules)."""
    pad = len(out_shape) - len(in_shape)
    shape = [1] * pad + list(in_shape)
    base = contiguous_strides(shape)
    return [0 if (d == 1 and o != 1) else s for d, o, s in zip(shape, out_shape, base)]


def collapse(shape: Sequence[int], strides: Sequence[Sequence[int]]) -> tuple[list[int], list[list[int]]]:
    """Merge adjacent dims where every operand is contiguous across them, to shorten loop nests."""
    dims = [d for d in shape]
    sts = [list(s) for s in strides]
    keep = [k for k, d in enumerate(dims) if d != 1] or [len(dims) - 1] if dims else []
    dims = [dims[k] for k in keep]
    sts = [[s[k] for k in keep] for s in sts]
    if not dims:
        return [1], [[0] for _ in sts]
    out_d, out_s = [dims[0]], [[s[0]] for s in sts]
    for k in range(1, len(dims)):
        if all(s[k - 1] == s[k] * dims[k] for s in sts) and all(
                os[-1] == s[k - 1] for os, s in zip(out_s, sts)):
            out_d[-1] *= dims[k]
            for os, s in zip(out_s, sts):
                os[-1] = s[k]
        else:
            out_d.append(dims[k])
            for os, s in zip(out_s, sts):
                os.append(s[k])
    return out_d, out_s

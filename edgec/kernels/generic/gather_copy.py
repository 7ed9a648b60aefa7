"""The gather-copy kernel: one emitter behind every pure data-movement op.

An op describes its output as per-axis tables: for output axis d, `tables[d][i]` is the source
element offset that index i contributes (or -1: "this slab is padding"). The source offset of an
output element is `sum_d tables[d][i_d]`. Transpose, Slice, Pad (constant/reflect/edge/wrap),
Expand, Tile, constant-index Gather, Split pieces, Concat pieces and nearest Resize are all just
different tables, and the tables are small (sum of dims, not product).

The emitter turns tables into good loops rather than table lookups where it can:
- an affine table (`base + step*i`) becomes index arithmetic, no memory table;
- adjacent affine axes that are contiguous in both source and destination merge into one
  axis, so a Slice/Concat/Split inner loop is one long contiguous copy LLVM vectorizes;
- the innermost axis is split into runs (padding fill / affine copy), so Pad's row is
  "fill, copy, fill" instead of a per-element select;
- a padding entry on an outer axis fills the whole inner block at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from edgec.codegen.broadcast import contiguous_strides
from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.types import const

PAD = -1
MAX_INNER_RUNS = 8  # more runs than this on the innermost axis: use a table loop instead


@dataclass
class Axis:
    """One output axis: extent, destination stride, and its source offset rule."""

    n: int
    dst_stride: int
    base: int = 0  # affine rule: src offset = base + step * i   (table is None)
    step: int = 0
    table: np.ndarray | None = None  # otherwise: explicit offsets, PAD marks padding

    @property
    def affine(self) -> bool:
        return self.table is None

    def has_pad(self) -> bool:
        return self.table is not None and bool((self.table < 0).any())


def _as_axis(table: np.ndarray, dst_stride: int) -> Axis:
    t = np.asarray(table, dtype=np.int64).ravel()
    n = int(t.size)
    if n == 1 and t[0] >= 0:
        return Axis(1, dst_stride, int(t[0]), 0)
    if n >= 2 and (t >= 0).all():
        d = np.diff(t)
        if (d == d[0]).all():
            return Axis(n, dst_stride, int(t[0]), int(d[0]))
    return Axis(n, dst_stride, table=t)


def runs(table: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Split a table into maximal runs (start, length, base, step); base == PAD marks padding."""
    out: list[tuple[int, int, int, int]] = []
    k, n = 0, len(table)
    while k < n:
        if table[k] < 0:
            j = k
            while j < n and table[j] < 0:
                j += 1
            out.append((k, j - k, PAD, 0))
        elif k + 1 < n and table[k + 1] >= 0:
            step = int(table[k + 1] - table[k])
            j = k + 1
            while j + 1 < n and table[j + 1] >= 0 and table[j + 1] - table[j] == step:
                j += 1
            j += 1
            out.append((k, j - k, int(table[k]), step))
        else:
            j = k + 1
            out.append((k, 1, int(table[k]), 0))
        k = j
    return out


def _simplify(axes: list[Axis]) -> tuple[list[Axis], int, bool]:
    """Drop extent-1 axes (folding their offset into a constant) and merge contiguous affine
    neighbours. Returns (axes, constant source offset, all-padding flag)."""
    offset, all_pad = 0, False
    kept: list[Axis] = []
    for a in axes:
        if a.n == 1:
            v = a.base if a.affine else int(a.table[0])
            if v < 0:
                all_pad = True
            else:
                offset += v
            continue
        if a.affine:
            offset += a.base
            a = Axis(a.n, a.dst_stride, 0, a.step)
        kept.append(a)
    merged: list[Axis] = []
    for a in kept:
        p = merged[-1] if merged else None
        if (p is not None and p.affine and a.affine and p.step == a.step * a.n
                and p.dst_stride == a.dst_stride * a.n):
            merged[-1] = Axis(p.n * a.n, a.dst_stride, 0, a.step)
        else:
            merged.append(a)
    return merged, offset, all_pad


class _Emitter:
    def __init__(self, kc: KernelContext, src: str, dst: str, pad_value: float | int):
        self.kc, self.b, self.src, self.dst = kc, kc.b, src, dst
        self.pad = const(kc.dtype(dst), pad_value)
        self.widths = (kc.dtype(src).itemsize, kc.dtype(dst).itemsize)

    def move(self, v: ir.Value) -> ir.Value:
        """A loaded element as the destination stores it: the same, or a float rounded/widened
        (a Pad whose input Cast was folded into it, edgec/optimize/fold_cast.py)."""
        src_w, dst_w = self.widths
        if src_w == dst_w:
            return v
        ty = self.pad.type
        return self.b.fptrunc(v, ty) if dst_w < src_w else self.b.fpext(v, ty)

    def table_ptr(self, a: Axis) -> ir.Value:
        t = a.table
        return self.kc.table(t.astype(np.int32 if t.max(initial=0) < 2**31 else np.int64), "off")

    def table_load(self, a: Axis, i: ir.Value) -> ir.Value:
        return self.kc.load_at(self.table_ptr(a), i)

    def add(self, x: ir.Value, y: ir.Value | int) -> ir.Value:
        if isinstance(y, int):
            if y == 0:
                return x
            y = self.kc.idx(y)
        return self.b.add(x, y, flags=["nsw"])

    def scaled(self, i: ir.Value, s: int) -> ir.Value | int:
        if s == 0:
            return 0
        return i if s == 1 else self.b.mul(i, self.kc.idx(s), flags=["nsw"])

    # ---- padding fill ----------------------------------------------------------------
    def fill(self, axes: Sequence[Axis], dst_off: ir.Value) -> None:
        """Store the pad value into the block spanned by `axes` (merged where contiguous)."""
        dims: list[list[int]] = []
        for a in axes:
            if dims and dims[-1][1] == a.dst_stride * a.n:
                dims[-1] = [dims[-1][0] * a.n, a.dst_stride]
            else:
                dims.append([a.n, a.dst_stride])
        if not dims:
            self.kc.store(self.dst, dst_off, self.pad)
            return
        with self.kc.nest([d[0] for d in dims], name="pf") as idx:
            o = dst_off
            for i, (_, s) in zip(idx, dims):
                o = self.add(o, self.scaled(i, s))
            self.kc.store(self.dst, o, self.pad)

    # ---- loop levels -----------------------------------------------------------------
    def level(self, axes: list[Axis], d: int, src_off: ir.Value, dst_off: ir.Value) -> None:
        a = axes[d]
        if d == len(axes) - 1:
            self.inner(a, src_off, dst_off)
            return
        with self.kc.loop(a.n, name=f"g{d}") as i:
            o = self.add(dst_off, self.scaled(i, a.dst_stride))
            if a.affine:
                self.level(axes, d + 1, self.add(src_off, self.scaled(i, a.step)), o)
            elif not a.has_pad():
                self.level(axes, d + 1, self.add(src_off, self.table_load(a, i)), o)
            else:
                t = self.table_load(a, i)
                with self.b.if_else(self.b.icmp_signed("<", t, self.kc.idx(0))) as (then, other):
                    with then:
                        self.fill(axes[d + 1:], o)
                    with other:
                        self.level(axes, d + 1, self.add(src_off, t), o)

    def copy_run(self, n: int, src_off: ir.Value, step: int, dst_off: ir.Value, ds: int) -> None:
        with self.kc.loop(n, name="c") as i:
            v = self.kc.load(self.src, self.add(src_off, self.scaled(i, step)))
            self.kc.store(self.dst, self.add(dst_off, self.scaled(i, ds)), self.move(v))

    def inner(self, a: Axis, src_off: ir.Value, dst_off: ir.Value) -> None:
        if a.affine:
            self.copy_run(a.n, self.add(src_off, a.base), a.step, dst_off, a.dst_stride)
            return
        rs = runs(a.table)
        if len(rs) <= MAX_INNER_RUNS:
            for start, length, base, step in rs:
                o = self.add(dst_off, start * a.dst_stride)
                if base == PAD:
                    self.fill([Axis(length, a.dst_stride)], o)
                else:
                    self.copy_run(length, self.add(src_off, base), step, o, a.dst_stride)
            return
        pad = a.has_pad()
        with self.kc.loop(a.n, name="t") as i:
            t = self.table_load(a, i)
            o = self.add(dst_off, self.scaled(i, a.dst_stride))
            if pad:  # load from a safe offset, then select the pad value
                is_pad = self.b.icmp_signed("<", t, self.kc.idx(0))
                t = self.b.select(is_pad, self.kc.idx(0), t)
                v = self.move(self.kc.load(self.src, self.add(src_off, t)))
                self.kc.store(self.dst, o, self.b.select(is_pad, self.pad, v))
            else:
                self.kc.store(self.dst, o, self.move(self.kc.load(self.src, self.add(src_off, t))))


def emit_gather_copy(kc: KernelContext, src: str, dst: str, tables: Sequence[np.ndarray], *,
                     dst_strides: Sequence[int] | None = None, dst_offset: int = 0,
                     pad_value: float | int = 0) -> None:
    """dst[dst_offset + sum_d i_d*dst_strides[d]] = src[sum_d tables[d][i_d]] (or pad_value where
    any table entry is PAD). Default dst_strides: contiguous over the table lengths."""
    dims = [len(t) for t in tables]
    if any(n == 0 for n in dims):
        return
    strides = list(dst_strides) if dst_strides is not None else contiguous_strides(dims)
    axes = [_as_axis(t, s) for t, s in zip(tables, strides)]
    if kc.value(src).size == 0:  # nothing to read: every entry must be padding
        axes = [Axis(a.n, a.dst_stride, table=np.full(a.n, PAD)) for a in axes]
    axes, offset, all_pad = _simplify(axes)
    em = _Emitter(kc, src, dst, pad_value)
    start = kc.idx(dst_offset)
    if all_pad:
        em.fill(axes, start)
    elif not axes:
        kc.store(dst, start, em.move(kc.load(src, offset)))
    else:
        em.level(axes, 0, kc.idx(offset), start)


def affine_table(n: int, stride: int, start: int = 0, step: int = 1) -> np.ndarray:
    return (start + step * np.arange(n, dtype=np.int64)) * stride


# ---- lowerings: each one only builds tables --------------------------------------------
@lowering("Transpose")
def lower_transpose(kc: KernelContext) -> None:
    x, y = kc.inputs[0], kc.outputs[0]
    st = contiguous_strides(kc.shape(x))
    perm = kc.attrs["perm"]
    emit_gather_copy(kc, x, y, [affine_table(n, st[p]) for n, p in zip(kc.shape(y), perm)])


@lowering("Slice")
def lower_slice(kc: KernelContext) -> None:
    x, y = kc.inputs[0], kc.outputs[0]
    st = contiguous_strides(kc.shape(x))
    starts, steps = kc.attrs["starts"], kc.attrs["steps"]
    emit_gather_copy(kc, x, y, [affine_table(n, s, b, k)
                                for n, s, b, k in zip(kc.shape(y), st, starts, steps)])


def pad_table(n_in: int, before: int, after: int, mode: str) -> np.ndarray:
    """Source indices along one axis of Pad; negative pads crop first."""
    idx = np.arange(max(-before, 0), n_in - max(-after, 0), dtype=np.int64)
    width = (max(before, 0), max(after, 0))
    if mode == "constant" or idx.size == 0:
        return np.pad(idx, width, mode="constant", constant_values=PAD)
    return np.pad(idx, width, mode=mode)


@lowering("Pad")
def lower_pad(kc: KernelContext) -> None:
    x, y = kc.inputs[0], kc.outputs[0]
    shape = kc.shape(x)
    pads, mode, r = kc.attrs["pads"], kc.attrs["mode"], len(shape)
    tables = []
    for d, (n, s) in enumerate(zip(shape, contiguous_strides(shape))):
        t = pad_table(n, pads[d], pads[r + d], mode)
        tables.append(np.where(t < 0, PAD, t * s))
    emit_gather_copy(kc, x, y, tables, pad_value=kc.attrs["value"])


@lowering("Expand")
def lower_expand(kc: KernelContext) -> None:
    x, y = kc.inputs[0], kc.outputs[0]
    out = kc.shape(y)
    shape = (1,) * (len(out) - len(kc.shape(x))) + tuple(kc.shape(x))
    st = contiguous_strides(shape)
    emit_gather_copy(kc, x, y, [affine_table(n, 0 if d == 1 else s)
                                for n, d, s in zip(out, shape, st)])


@lowering("Tile")
def lower_tile(kc: KernelContext) -> None:
    x, y = kc.inputs[0], kc.outputs[0]
    shape = kc.shape(x)
    tables = [(np.arange(n, dtype=np.int64) % d) * s
              for n, d, s in zip(kc.shape(y), shape, contiguous_strides(shape))]
    emit_gather_copy(kc, x, y, tables)


@lowering("Gather")
def lower_gather(kc: KernelContext) -> None:
    data, indices, y = kc.inputs[0], kc.inputs[1], kc.outputs[0]
    axis, shape = kc.attrs["axis"], kc.shape(data)
    st = contiguous_strides(shape)
    if not kc.value(indices).is_const:
        emit_runtime_gather(kc, data, indices, y, axis)
        return
    idx = np.asarray(kc.value(indices).data, dtype=np.int64).ravel()
    idx = np.where(idx < 0, idx + shape[axis], idx)
    # The index dims are one axis of the (contiguous) output viewed as pre + [m] + post.
    tables = [affine_table(n, s) for n, s in zip(shape[:axis], st[:axis])]
    tables.append(idx * st[axis])
    tables += [affine_table(n, s) for n, s in zip(shape[axis + 1:], st[axis + 1:])]
    emit_gather_copy(kc, data, y, tables)


def emit_runtime_gather(kc: KernelContext, data: str, indices: str, y: str, axis: int) -> None:
    """Gather with indices read at run time: outer x indices x contiguous inner block copy.
    Negative indices wrap once; out-of-range ones are clamped so a bad input cannot read
    outside the buffer."""
    shape = kc.shape(data)
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    n = shape[axis]
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    m = kc.value(indices).size
    if outer * m * inner == 0:
        return
    b, isz = kc.b, kc.isize
    with kc.loop(outer, name="o") as o, kc.loop(m, name="j") as j:
        k = kc.load(indices, j)
        k = b.sext(k, isz) if k.type.width < isz.width else (
            b.trunc(k, isz) if k.type.width > isz.width else k)
        k = b.select(b.icmp_signed("<", k, kc.idx(0)), b.add(k, kc.idx(n)), k)
        k = b.select(b.icmp_signed("<", k, kc.idx(0)), kc.idx(0), k)
        k = b.select(b.icmp_signed(">", k, kc.idx(n - 1)), kc.idx(n - 1), k)
        src = b.mul(b.add(b.mul(o, kc.idx(n), flags=["nsw"]), k, flags=["nsw"]), kc.idx(inner),
                    flags=["nsw"])
        dst = b.mul(b.add(b.mul(o, kc.idx(m), flags=["nsw"]), j, flags=["nsw"]), kc.idx(inner),
                    flags=["nsw"])
        with kc.loop(inner, name="c") as i:
            kc.store(y, b.add(dst, i, flags=["nsw"]), kc.load(data, b.add(src, i, flags=["nsw"])))

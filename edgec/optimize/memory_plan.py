"""Static memory plan: every intermediate gets an offset in one caller-owned arena.

Sizes and lifetimes are static, so this is tflite-micro's greedy planner: buffers sorted by
size (largest first), each placed at the lowest offset where it overlaps no already-placed
buffer that is alive at the same time. `Reshape` outputs alias their input (no copy), and the
inputs of a channel Concat marked by `alias_concat_inputs` live inside its output, so their
producers write the concatenation directly (no copy). Constants are packed into one read-only
weight blob, 64-byte aligned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgec.ir.graph import Graph

ALIGN = 64
# Vector kernels may read (never write) a little past a row's end in tail tiles; the arena ends
# with this much slack so such reads stay inside it.
READ_SLACK = 512
ALIAS_OPS = {"Reshape"}


def _align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


@dataclass
class MemoryPlan:
    arena_bytes: int
    offsets: dict[str, int]  # arena offset of every non-constant value (aliases included)
    weight_offsets: dict[str, int]  # blob offset of every constant value a kernel reads
    weights: bytes
    sum_of_sizes: int  # what a naive plan (no reuse) would need

    def location(self, name: str) -> tuple[str, int]:
        if name in self.weight_offsets:
            return "weights", self.weight_offsets[name]
        return "arena", self.offsets[name]


def alias_concat_inputs(g: Graph) -> Graph:
    """Pass `alias-concat`: mark the inputs of a Concat that can be written in place, as slabs of
    its output (attr `alias_inputs`). The slabs are contiguous when every dim before the axis is
    1 (NCHW channel concats at batch 1, the FPN necks). An input qualifies when a kernel
    produces it (not a graph input or output, not a constant or another alias) and it feeds
    no other aliased Concat and appears once here: it then lives in exactly one place."""
    producers = {o: n for n in g.nodes for o in n.outputs}
    taken: set[str] = set()
    for n in g.nodes:
        if n.op != "Concat" or not n.outputs[0]:
            continue
        y = g.values[n.outputs[0]]
        axis = n.attrs["axis"] % len(y.shape)
        if int(np.prod(y.shape[:axis], dtype=np.int64)) != 1:
            continue
        flags = []
        for x in n.inputs:
            p = producers.get(x)
            ok = (p is not None and p.op not in ALIAS_OPS and p.op != "Concat" and x not in g.outputs
                  and not g.values[x].is_const and n.inputs.count(x) == 1 and x not in taken
                  and g.values[x].dtype == y.dtype)
            flags.append(ok)
            if ok:
                taken.add(x)
        if any(flags):
            n.attrs["alias_inputs"] = flags
    return g


def alias_roots(g: Graph) -> dict[str, tuple[str, int]]:
    """Aliased value -> (the buffer it lives in, byte offset there)."""
    parent: dict[str, tuple[str, int]] = {}
    for n in g.nodes:
        if n.op in ALIAS_OPS:
            parent[n.outputs[0]] = (n.inputs[0], 0)
        elif n.op == "Concat" and n.attrs.get("alias_inputs"):
            pos = 0
            for x, ok in zip(n.inputs, n.attrs["alias_inputs"]):
                if ok:
                    parent[x] = (n.outputs[0], pos)
                pos += g.values[x].nbytes
    root: dict[str, tuple[str, int]] = {}
    for name in parent:
        cur, off = name, 0
        while cur in parent:
            cur, step = parent[cur]
            off += step
        root[name] = (cur, off)
    return root


def plan_memory(g: Graph) -> MemoryPlan:
    root = alias_roots(g)

    def r(name: str) -> str:
        return root[name][0] if name in root else name

    # Lifetimes in node steps; graph inputs live from the start, outputs to the end.
    end = len(g.nodes)
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for name in g.inputs:
        first[r(name)] = -1
        last[r(name)] = end
    for step, n in enumerate(g.nodes):
        for o in n.outputs:
            if o and not g.values[r(o)].is_const:
                first.setdefault(r(o), step)
                last[r(o)] = max(last.get(r(o), step), step)
        for i in n.inputs:
            if i and not g.values[r(i)].is_const:
                last[r(i)] = max(last.get(r(i), step), step)
    for name in g.outputs:
        if not g.values[r(name)].is_const:
            last[r(name)] = end

    buffers = sorted(first, key=lambda b: (-g.values[b].nbytes, first[b], b))
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last)
    offsets: dict[str, int] = {}
    for b in buffers:
        size = _align(max(g.values[b].nbytes, 1))
        lo, hi = first[b], last[b]
        conflicts = sorted((o, s) for o, s, f, e in placed if not (e < lo or f > hi))
        off = 0
        for o, s in conflicts:
            if off + size <= o:
                break
            off = max(off, _align(o + s))
        offsets[b] = off
        placed.append((off, size, lo, hi))
    arena = max((o + s for o, s, _, _ in placed), default=0) + READ_SLACK

    for name, (base, off) in root.items():
        if base in offsets:
            offsets[name] = offsets[base] + off

    # Weight blob: constants in first-use order (deterministic).
    weight_offsets: dict[str, int] = {}
    chunks: list[bytes] = []
    pos = 0
    for n in g.nodes:
        for i in n.inputs:
            if not i or not g.values[r(i)].is_const or r(i) in weight_offsets:
                continue
            data = np.ascontiguousarray(g.values[r(i)].data)
            raw = data.astype(np.uint8).tobytes() if data.dtype == bool else data.tobytes()
            weight_offsets[r(i)] = pos
            chunks.append(raw + b"\0" * (_align(len(raw)) - len(raw)))
            pos += _align(len(raw))
    for name, (base, off) in root.items():
        if base in weight_offsets:
            weight_offsets[name] = weight_offsets[base] + off
    naive = sum(_align(max(g.values[b].nbytes, 1)) for b in first)
    return MemoryPlan(arena, offsets, weight_offsets, b"".join(chunks), naive)

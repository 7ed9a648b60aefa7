"""Static memory plan: every intermediate gets an offset in one caller-owned arena.

Sizes and lifetimes are static, so this is tflite-micro's greedy planner: buffers sorted by
size (largest first), each placed at the lowest offset where it overlaps no already-placed
buffer that is alive at the same time. `Reshape` outputs alias their input (no copy).
Constants are packed into one read-only weight blob, 64-byte aligned.
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


def alias_roots(g: Graph) -> dict[str, str]:
    root: dict[str, str] = {}
    for n in g.nodes:
        if n.op in ALIAS_OPS:
            src = n.inputs[0]
            root[n.outputs[0]] = root.get(src, src)
    return root


def plan_memory(g: Graph) -> MemoryPlan:
    root = alias_roots(g)

    def r(name: str) -> str:
        return root.get(name, name)

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

    for name in list(root):
        if r(name) in offsets:
            offsets[name] = offsets[r(name)]

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
    for name in list(root):
        if r(name) in weight_offsets:
            weight_offsets[name] = weight_offsets[r(name)]
    naive = sum(_align(max(g.values[b].nbytes, 1)) for b in first)
    return MemoryPlan(arena, offsets, weight_offsets, b"".join(chunks), naive)

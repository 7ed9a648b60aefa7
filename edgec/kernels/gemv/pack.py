"""Target-dependent pass `prepare-gemv`: batch-1 MatMul with constant fp32 weights becomes
`Gemv` (edgec/kernels/gemv/lower.py) with the weights packed at build time in the order its
loop reads them ([column block][k][NB]) and the bias padded to whole blocks. The schedule is
the default heuristic unless `overrides` (from a tuning log) has one for this task."""

from __future__ import annotations

import numpy as np

from edgec.ir.graph import Graph, Node
from edgec.kernels.gemv.tuning import GemvSchedule, default_gemv_schedule, gemv_task
from edgec.kernels.generic.column_blocks import pack_column_blocks
from edgec.options import BuildOptions
from edgec.targets import TargetProfile
from edgec.tune.keys import Overrides, task_key


def batch1_dense(g: Graph, n: Node) -> bool:
    """A batch-1 fp32 MatMul (A is [1, ..., 1, K]) with a constant 2-D B and an optional constant
    bias over the N outputs: the dense layers of GEMV-shaped nets (Gemv and SparseDense)."""
    if n.op != "MatMul" or n.attrs.get("trans_a") or len(n.inputs) < 2:
        return False
    a, w = g.values[n.inputs[0]], g.values[n.inputs[1]]
    if a.dtype != np.float32 or not a.shape or any(d != 1 for d in a.shape[:-1]):
        return False
    if not w.is_const or w.dtype != np.float32 or len(w.shape) != 2:
        return False
    k, cols = (w.shape[1], w.shape[0]) if n.attrs.get("trans_b") else w.shape
    bias = g.values[n.inputs[2]] if len(n.inputs) > 2 and n.inputs[2] else None
    return (a.shape[-1] == k and g.values[n.outputs[0]].size == cols
            and (bias is None or (bias.is_const and bias.size == cols and bias.dtype == np.float32)))


def _eligible(g: Graph, n: Node) -> bool:
    return batch1_dense(g, n) and g.values[n.outputs[0]].size >= 4


def pack_gemv(w: np.ndarray, bias: np.ndarray | None, nb: int) -> tuple[np.ndarray, np.ndarray]:
    """W (K x N) as [N/NB][K][NB] (columns zero-padded to whole blocks), bias padded alike."""
    return pack_column_blocks(w, bias, nb)


def gemv_schedule(profile: TargetProfile, k: int, n: int, overrides: Overrides | None,
                  options: BuildOptions | None = None) -> GemvSchedule:
    knobs = (overrides or {}).get(task_key(gemv_task(k, n, profile.name, options)))
    if knobs:
        return GemvSchedule(int(knobs["nv"]), int(knobs["ku"]), int(knobs["ka"]),
                            default_gemv_schedule(profile, k, n).lanes)
    return default_gemv_schedule(profile, k, n)


def prepare_gemv(profile: TargetProfile, overrides: Overrides | None = None,  # noqa: ANN201 - a Pass
                 options: BuildOptions | None = None):
    def run(g: Graph) -> Graph:
        nodes: list[Node] = []
        for n in g.nodes:
            if not _eligible(g, n):
                nodes.append(n)
                continue
            w = g.values[n.inputs[1]].data
            if n.attrs.get("trans_b"):
                w = w.T
            k, cols = w.shape
            s = gemv_schedule(profile, k, cols, overrides, options)
            bias = g.values[n.inputs[2]].data if len(n.inputs) > 2 and n.inputs[2] else None
            packed, b = pack_gemv(np.asarray(w, np.float32), bias, s.nv * s.lanes)
            nb = s.nv * s.lanes
            attrs = {"k": k, "n": cols, "schedule": s.to_attr(), "activation": n.attrs.get("activation"),
                     "task": task_key(gemv_task(k, cols, profile.name, options))}
            if n.attrs.get("exact"):
                attrs["exact"] = True
            nodes.append(Node("Gemv", [n.inputs[0], g.add_const(f"{n.inputs[1]}_gemv{nb}", packed),
                                       g.add_const(f"{n.outputs[0]}_gemv_bias{nb}", b)],
                              list(n.outputs), attrs, n.name))
        g.nodes = nodes
        return g

    return run

"""Helpers shared by several kernel families (kept out of any one kernel module so that no
kernel imports another): the vector epilogue that applies a fused activation, and the lane
interleave that puts column-vectorized results back in memory order."""

from __future__ import annotations

from llvmlite import ir

from edgec.codegen.activations import FLOAT_UNARY
from edgec.codegen.types import I32

# Activations whose rules are valid on vectors as they are: select/compare/mul code, and the
# branch-free exp/log/tanh of edgec/codegen/mathfn.py (a sigmoid epilogue lane by lane cost the
# PP-OCR-like det head 1.7x onnxruntime's time).
VECTOR_SAFE = {"Relu", "LeakyRelu", "Clip", "HardSigmoid", "HardSwish", "Sigmoid", "Tanh", "Exp", "Log", "Swish"}


def vector_activation(b: ir.IRBuilder, v: ir.Value, act: tuple[str, dict] | None, lanes: int) -> ir.Value:
    if act is None:
        return v
    rule = FLOAT_UNARY[act[0]]
    if act[0] in VECTOR_SAFE:
        return rule(b, v, act[1])
    out = v
    for i in range(lanes):  # scalar rules (exp-based) lane by lane
        lane = b.extract_element(v, ir.Constant(I32, i))
        out = b.insert_element(out, rule(b, lane, act[1]), ir.Constant(I32, i))
    return out


def interleave(b: ir.IRBuilder, vals: list[ir.Value], lanes: int) -> list[ir.Value]:
    """out[j] = vals[j % k][j // k] for k = len(vals) in (1, 2, 4), as k vectors of `lanes`."""
    if len(vals) == 1:
        return vals
    if len(vals) == 4:  # 4-way = 2-way of the 2-way interleaves of (v0, v2) and (v1, v3)
        evens = interleave(b, [vals[0], vals[2]], lanes)
        odds = interleave(b, [vals[1], vals[3]], lanes)
        return interleave(b, [evens[0], odds[0]], lanes) + interleave(b, [evens[1], odds[1]], lanes)
    a, c = vals
    lo = [i // 2 + (lanes if i % 2 else 0) for i in range(lanes)]
    hi = [lanes // 2 + i // 2 + (lanes if i % 2 else 0) for i in range(lanes)]
    return [b.shuffle_vector(a, c, ir.Constant(ir.VectorType(I32, lanes), mask)) for mask in (lo, hi)]

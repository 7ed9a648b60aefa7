"""Seeded sparse test models: one batch-1 dense layer whose weight has zero blocks."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper

from tests.helpers import make_model


def sparse_weight(k: int, n: int, density: float, seed: int = 0, block: tuple[int, int] = (1, 8),
                  unstructured: bool = False) -> np.ndarray:
    """W[K, N] ~ N(0, 1/K) keeping `density` of the blocks (or of the elements)."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
    if unstructured:
        w[rng.random((k, n)) >= density] = 0.0
        return w
    r, c = block
    keep = rng.random((-(-k // r), -(-n // c))) < density
    return (w * np.kron(keep, np.ones(block))[:k, :n]).astype(np.float32)


def dense_layer(w: np.ndarray, bias: bool = True, act: str | None = None, gemm: bool = False,
                rank3: bool = False, seed: int = 1) -> onnx.ModelProto:
    """y = act(x @ W + b) as MatMul + Add (or Gemm with transB and a stored W^T)."""
    k, n = w.shape
    rng = np.random.default_rng(seed)
    inits: dict[str, np.ndarray] = {}
    nodes = []
    y = "y" if act is None else "pre"
    if gemm:
        inits["wt"] = np.ascontiguousarray(w.T)
        ins = ["x", "wt"]
        if bias:
            inits["b"] = rng.uniform(-0.5, 0.5, n).astype(np.float32)
            ins.append("b")
        nodes.append(helper.make_node("Gemm", ins, [y], transB=1))
    else:
        inits["w"] = w
        nodes.append(helper.make_node("MatMul", ["x", "w"], ["mm" if bias else y]))
        if bias:
            inits["b"] = rng.uniform(-0.5, 0.5, n).astype(np.float32)
            nodes.append(helper.make_node("Add", ["mm", "b"], [y]))
    if act is not None:
        nodes.append(helper.make_node(act, ["pre"], ["y"]))
    xs = [1, 1, k] if rank3 else [1, k]
    return make_model(nodes, [("x", T.FLOAT, xs)], [("y", T.FLOAT, [*xs[:-1], n])], inits)

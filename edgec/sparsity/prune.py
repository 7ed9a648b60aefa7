"""Magnitude pruning to block patterns (`edgec sparsify`): for every constant weight of a MatMul
(B), Gemm (B) or 1x1 Conv, viewed as W[K, N] with y = x @ W (K inputs, N outputs), keep the
`density` fraction of R x C blocks (R consecutive inputs x C consecutive outputs) with the
largest L2 norm and zero the rest. Pattern 1x8 = one input element x 8 outputs: the block the
sparse kernels skip as a whole. Deterministic (stable ordering on ties)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from edgec.errors import EdgecError

_PATTERN = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


@dataclass(frozen=True)
class LayerReport:
    weight: str  # initializer name
    node: str
    op: str
    shape: tuple[int, ...]
    blocks: int
    kept_blocks: int
    density_before: float  # non-zero elements / elements
    density_after: float


def parse_pattern(pattern: str) -> tuple[int, int]:
    m = _PATTERN.match(pattern)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise EdgecError(f"--pattern {pattern!r}: expected RxC with positive integers, e.g. 1x8, 4x1, 1x1")
    return int(m.group(1)), int(m.group(2))


def check_density(density: float) -> float:
    if not 0.0 < density <= 1.0:  # also rejects NaN
        raise EdgecError(f"--density {density}: expected a fraction of blocks to keep in (0, 1], e.g. 0.2")
    return float(density)


def prune_matrix(w: np.ndarray, pattern: tuple[int, int], density: float) -> tuple[np.ndarray, int, int]:
    """(pruned W, blocks, kept blocks) for a 2-D W[K, N]; edge blocks are partial."""
    r, c = pattern
    k, n = w.shape
    kb, nb = -(-k // r), -(-n // c)
    pad = np.zeros((kb * r, nb * c), np.float64)
    pad[:k, :n] = w
    norms = np.sqrt((pad.reshape(kb, r, nb, c) ** 2).sum(axis=(1, 3))).ravel()
    keep_n = min(norms.size, max(1, int(round(density * norms.size))))
    order = np.argsort(-norms, kind="stable")
    keep = np.zeros(norms.size, bool)
    keep[order[:keep_n]] = True
    mask = np.kron(keep.reshape(kb, nb), np.ones((r, c), bool))[:k, :n]
    return np.where(mask, w, np.zeros_like(w)), norms.size, keep_n


def _targets(model: onnx.ModelProto) -> list[tuple[onnx.NodeProto, str, bool]]:
    """(node, initializer name, whether W[K, N] is the transpose of the stored 2-D view)."""
    inits = {i.name: i for i in model.graph.initializer}
    out = []
    for node in model.graph.node:
        if node.op_type in ("MatMul", "Gemm") and len(node.input) > 1 and node.input[1] in inits:
            if len(inits[node.input[1]].dims) != 2:
                continue
            trans = node.op_type == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute)
            out.append((node, node.input[1], trans))
        elif node.op_type == "Conv" and len(node.input) > 1 and node.input[1] in inits:
            dims = list(inits[node.input[1]].dims)
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            if len(dims) == 4 and dims[2:] == [1, 1] and group == 1:
                out.append((node, node.input[1], True))  # [M, C, 1, 1]: W[K=C, N=M] transposed
    return out


def prune_model(model: onnx.ModelProto, pattern: str, density: float) -> tuple[onnx.ModelProto, list[LayerReport]]:
    pat = parse_pattern(pattern)
    density = check_density(density)
    pruned = onnx.ModelProto()
    pruned.CopyFrom(model)
    inits = {i.name: i for i in pruned.graph.initializer}
    reports: list[LayerReport] = []
    done: set[str] = set()
    for node, name, trans in _targets(pruned):
        if name in done:
            continue
        done.add(name)
        arr = numpy_helper.to_array(inits[name])
        if arr.dtype not in (np.float32, np.float64, np.float16):
            continue
        shape = arr.shape
        w2 = arr.reshape(shape[0], -1)
        view = w2.T if trans else w2
        new, blocks, kept = prune_matrix(view, pat, density)
        new = (new.T if trans else new).reshape(shape).astype(arr.dtype)
        inits[name].CopyFrom(numpy_helper.from_array(new, name))
        size = max(1, arr.size)
        reports.append(LayerReport(name, node.name, node.op_type, tuple(shape), blocks, kept,
                                   np.count_nonzero(arr) / size, np.count_nonzero(new) / size))
    if not reports:
        raise EdgecError("nothing to sparsify: the model has no constant float MatMul/Gemm (2-D B) "
                         "or 1x1 Conv weights")
    return pruned, reports


def sparsify_file(src: str | os.PathLike, dst: str | os.PathLike, pattern: str,
                  density: float) -> list[LayerReport]:
    from edgec.importer import load_onnx

    parse_pattern(pattern)
    check_density(density)
    model = load_onnx(src)
    pruned, reports = prune_model(model, pattern, density)
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(pruned, str(dst))
    return reports

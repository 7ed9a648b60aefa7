"""`edgec sparsify` and edgec.sparsity.prune: per-layer block densities, the kept blocks are the
largest, CLI errors are one clear line; a pruned model builds to SparseDense and stays correct."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from edgec.errors import EdgecError
from edgec.sparsity.prune import prune_matrix, prune_model
from tests.helpers import check_model, make_model, rand


def _net(seed: int = 0) -> onnx.ModelProto:
    """MatMul 64x48 -> Relu -> Gemm(transB) 48x40, plus a 1x1 Conv on a second input."""
    rng = np.random.default_rng(seed)
    inits = {"w1": rng.standard_normal((64, 48)).astype(np.float32),
             "w2t": rng.standard_normal((40, 48)).astype(np.float32),
             "b2": rng.standard_normal(40).astype(np.float32),
             "wc": rng.standard_normal((16, 24, 1, 1)).astype(np.float32)}
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["hr"]),
             helper.make_node("Gemm", ["hr", "w2t", "b2"], ["y"], transB=1),
             helper.make_node("Conv", ["img", "wc"], ["z"], kernel_shape=[1, 1])]
    return make_model(nodes, [("x", T.FLOAT, [1, 64]), ("img", T.FLOAT, [1, 24, 5, 5])],
                      [("y", T.FLOAT, [1, 40]), ("z", T.FLOAT, [1, 16, 5, 5])], inits)


def _blocks_ok(orig: np.ndarray, new: np.ndarray, pattern: tuple[int, int], density: float) -> None:
    r, c = pattern
    k, n = orig.shape
    kept, dropped = [], []
    for i in range(0, k, r):
        for j in range(0, n, c):
            o, b = orig[i:i + r, j:j + c], new[i:i + r, j:j + c]
            if np.any(b):
                assert np.array_equal(o, b), "a kept block must be unchanged"
                kept.append(np.linalg.norm(o))
            else:
                dropped.append(np.linalg.norm(o))
    total = len(kept) + len(dropped)
    assert len(kept) == round(density * total)
    assert min(kept) >= max(dropped), "magnitude pruning keeps the largest blocks"


@pytest.mark.parametrize("pattern,density", [((1, 8), 0.2), ((4, 1), 0.5), ((1, 1), 0.1), ((3, 5), 0.3)])
def test_prune_matrix_blocks(pattern: tuple[int, int], density: float) -> None:
    w = rand(37, 45, seed=1)  # not a multiple of the block: edge blocks are partial
    new, blocks, kept = prune_matrix(w, pattern, density)
    assert blocks == -(-37 // pattern[0]) * -(-45 // pattern[1]) and kept == round(density * blocks)
    _blocks_ok(w, new, pattern, density)


def test_prune_model_every_layer_and_layout() -> None:
    model = _net()
    pruned, reports = prune_model(model, "1x8", 0.25)
    by_name = {r.weight: r for r in reports}
    assert sorted(by_name) == ["w1", "w2t", "wc"]
    arrays = {i.name: numpy_helper.to_array(i) for i in pruned.graph.initializer}
    orig = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    # Blocks run along the outputs of y = x @ W: W itself for MatMul, the transpose for Gemm
    # transB and for the 1x1 Conv's [M, C] weight.
    _blocks_ok(orig["w1"], arrays["w1"], (1, 8), 0.25)
    _blocks_ok(orig["w2t"].T, arrays["w2t"].T, (1, 8), 0.25)
    _blocks_ok(orig["wc"].reshape(16, 24).T, arrays["wc"].reshape(16, 24).T, (1, 8), 0.25)
    assert np.array_equal(arrays["b2"], orig["b2"])  # biases untouched
    for r in reports:
        assert r.density_before == 1.0 and abs(r.density_after - r.kept_blocks / r.blocks) < 0.03
    # The pruned model compiles with sparse layers and still matches onnxruntime.
    check_model(pruned, {"x": rand(1, 64, seed=2), "img": rand(1, 24, 5, 5, seed=3)})


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgec.cli", "sparsify", *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_table_json_and_errors(tmp_path: Path) -> None:
    src = tmp_path / "net.onnx"
    onnx.save(_net(), str(src))
    out = tmp_path / "pruned.onnx"
    p = _cli(str(src), "--pattern", "1x8", "--density", "0.2", "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert "w1" in p.stderr and "density after" in p.stderr and out.is_file()
    p = _cli(str(src), "--pattern", "4x1", "--density", "0.5", "-o", str(out), "--json")
    doc = json.loads(p.stdout)
    assert {entry["weight"] for entry in doc["layers"]} == {"w1", "w2t", "wc"}
    assert all(entry["kept_blocks"] == round(0.5 * entry["blocks"]) for entry in doc["layers"])
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"definitely not protobuf")
    no_weights = tmp_path / "relu.onnx"
    onnx.save(make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", T.FLOAT, [4])], [("y", T.FLOAT, [4])]),
              str(no_weights))
    cases = [((str(src), "--pattern", "1y8"), "--pattern"), ((str(src), "--pattern", "0x8"), "--pattern"),
             ((str(src), "--density", "0"), "--density"), ((str(src), "--density", "1.5"), "--density"),
             ((str(bad),), "not a readable ONNX model"), ((str(tmp_path / "missing.onnx"),), "not found"),
             ((str(no_weights),), "nothing to sparsify")]
    for args, needle in cases:
        p = _cli(*args, "-o", str(tmp_path / "x.onnx"))
        assert p.returncode == 2, (args, p.stderr)
        assert needle in p.stderr and "Traceback" not in p.stderr, (args, p.stderr)
    with pytest.raises(EdgecError, match="density"):
        prune_model(_net(), "1x8", float("nan"))

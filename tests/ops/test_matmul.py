"""MatMul and Gemm vs onnxruntime and onnx.reference, on host and (subset) under qemu."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.errors import ModelError
from edgec.importer import import_model
from edgec.pipeline import run_pipeline
from tests.helpers import check_model, make_model, rand

F = T.FLOAT


@pytest.mark.parametrize("sa,sb", [
    ([3, 5], [5, 4]),                # plain 2-D
    ([1, 33], [33, 20]),             # batch-1 GEMV
    ([6, 9], [9, 1]),                # N == 1 (dot form)
    ([5], [5, 4]),                   # 1-D A
    ([3, 5], [5]),                   # 1-D B
    ([7], [7]),                      # both 1-D: scalar result
    ([2, 3, 5], [5, 4]),             # batched A, shared B
    ([3, 5], [2, 5, 4]),             # shared A, batched B
    ([2, 1, 3, 5], [4, 5, 6]),       # batch broadcast both ways
    ([2, 3, 4, 5], [2, 3, 5, 6]),    # same batch
    ([2, 4, 5], [5]),                # batched A with 1-D B
    ([5], [3, 5, 2]),                # 1-D A with batched B
])
def test_matmul_shapes(sa: list[int], sb: list[int]) -> None:
    m = make_model([helper.make_node("MatMul", ["a", "b"], ["y"])], [("a", F, sa), ("b", F, sb)],
                   [("y", F, None)])
    check_model(m, {"a": rand(*sa, seed=1), "b": rand(*sb, seed=2)})


def test_matmul_const_weights() -> None:
    """Weights in the read-only blob, A at run time; larger K to exercise the vector loops."""
    w = rand(67, 45, seed=3)
    m = make_model([helper.make_node("MatMul", ["a", "w"], ["y"])], [("a", F, [2, 5, 67])], [("y", F, None)],
                   {"w": w})
    check_model(m, {"a": rand(2, 5, 67, seed=4)})


def _fused(model: onnx.ModelProto) -> list:
    g = run_pipeline(import_model(model))
    return [n for n in g.nodes if n.op == "MatMul"]


@pytest.mark.parametrize("sa,sb,bias_shape", [([3, 6], [6, 5], [5]), ([2, 3, 6], [6], [3]), ([1, 6], [6, 1], [1]),
                                              ([3, 6], [6, 5], [1, 1]), ([6], [6], [])])
def test_matmul_bias_activation(sa: list[int], sb: list[int], bias_shape: list[int]) -> None:
    """MatMul + Add(const) + activation fuses into one kernel (bias along the last output dim,
    which is M when B is 1-D; a scalar when both operands are 1-D)."""
    nodes = [helper.make_node("MatMul", ["a", "w"], ["p"]), helper.make_node("Add", ["p", "bias"], ["q"]),
             helper.make_node("LeakyRelu", ["q"], ["y"], alpha=0.1)]
    m = make_model(nodes, [("a", F, sa)], [("y", F, None)], {"w": rand(*sb, seed=5), "bias": rand(*bias_shape, seed=6)})
    [mm] = _fused(m)
    assert len(mm.inputs) == 3 and mm.attrs["activation"][0] == "LeakyRelu"
    check_model(m, {"a": rand(*sa, seed=7)})


@pytest.mark.parametrize("dtype", [T.INT32, T.INT64, T.DOUBLE])
def test_matmul_dtypes(dtype: int) -> None:
    m = make_model([helper.make_node("MatMul", ["a", "b"], ["y"])], [("a", dtype, [2, 3, 7]), ("b", dtype, [7, 4])],
                   [("y", dtype, None)])
    npt = helper.tensor_dtype_to_np_dtype(dtype)
    rng = np.random.default_rng(8)
    check_model(m, {"a": rng.integers(-9, 9, (2, 3, 7)).astype(npt), "b": rng.integers(-9, 9, (7, 4)).astype(npt)})


# ---- Gemm ------------------------------------------------------------------------------------
M, K, N = 3, 5, 4
C_SHAPES = [None, (), (1,), (N,), (1, N), (M, 1), (M, N)]
RUNTIME_C_SHAPES = [(), (N,), (1, N), (M, 1), (M, N)]


def _gemm_model(ta: int, tb: int, alpha: float, beta: float, opset: int = 13) -> tuple[onnx.ModelProto, dict]:
    """Every C shape with a constant B, every runtime C shape with a runtime B, and constant A
    with runtime B (alpha folds into A) - one model, one build per attribute combination."""
    sa, sb = ([K, M] if ta else [M, K]), ([N, K] if tb else [K, N])
    attrs = {"transA": ta, "transB": tb, "alpha": alpha, "beta": beta}
    inits = {"bc": rand(*sb, seed=10), "ac": rand(*sa, seed=11)}
    inputs = [("a", F, sa), ("b", F, sb)]
    feeds = {"a": rand(*sa, seed=12), "b": rand(*sb, seed=13)}
    nodes, outputs = [], []
    for k, cs in enumerate(C_SHAPES):
        if cs is None and opset < 11:
            continue  # C is required before opset 11
        ins = ["a", "bc"] + ([] if cs is None else [f"cc{k}"])
        if cs is not None:
            inits[f"cc{k}"] = rand(*cs, seed=20 + k)
        nodes.append(helper.make_node("Gemm", ins, [f"y{k}"], **attrs))
        outputs.append((f"y{k}", F, [M, N]))
    for k, cs in enumerate(RUNTIME_C_SHAPES):
        inputs.append((f"cr{k}", F, list(cs)))
        feeds[f"cr{k}"] = rand(*cs, seed=40 + k)
        nodes.append(helper.make_node("Gemm", ["a", "b", f"cr{k}"], [f"z{k}"], **attrs))
        outputs.append((f"z{k}", F, [M, N]))
    nodes.append(helper.make_node("Gemm", ["ac", "b", "cc3"], ["w"], **attrs))
    outputs.append(("w", F, [M, N]))
    return make_model(nodes, inputs, outputs, inits, opset=opset), feeds


@pytest.mark.parametrize("ta,tb,alpha,beta", list(itertools.product([0, 1], [0, 1], [1.0, -0.5], [1.0, 0.0, 2.5])))
def test_gemm_combinations(ta: int, tb: int, alpha: float, beta: float) -> None:
    m, feeds = _gemm_model(ta, tb, alpha, beta)
    check_model(m, feeds)


def test_gemm_opset9_and_relu() -> None:
    m, feeds = _gemm_model(1, 1, 0.75, 1.5, opset=9)
    check_model(m, feeds)
    # Gemm + Relu: the bias and the activation both end up in the MatMul kernel.
    nodes = [helper.make_node("Gemm", ["a", "w", "c"], ["p"], transB=1), helper.make_node("Relu", ["p"], ["y"])]
    m = make_model(nodes, [("a", F, [1, 40])], [("y", F, None)], {"w": rand(24, 40, seed=50), "c": rand(24, seed=51)})
    [mm] = _fused(m)
    assert len(mm.inputs) == 3 and mm.attrs["activation"][0] == "Relu" and not mm.attrs["trans_b"]
    check_model(m, {"a": rand(1, 40, seed=52)})


def test_matmul_rejects_float16() -> None:
    m = make_model([helper.make_node("MatMul", ["a", "b"], ["y"])], [("a", T.FLOAT16, [2, 3]), ("b", T.FLOAT16, [3, 2])],
                   [("y", T.FLOAT16, None)])
    with pytest.raises(ModelError, match="float16"):
        import_model(m)


@pytest.mark.parametrize("device", ["rpi4", "rpi3"])
def test_matmul_arm(device: str) -> None:
    nodes = [helper.make_node("MatMul", ["a", "w"], ["p"]), helper.make_node("Add", ["p", "bias"], ["q"]),
             helper.make_node("Tanh", ["q"], ["y0"]),
             helper.make_node("MatMul", ["b3", "a"], ["y1"]),
             helper.make_node("Gemm", ["g", "h", "c"], ["y2"], transA=1, transB=1, alpha=0.5, beta=2.0),
             helper.make_node("MatMul", ["v", "w"], ["y3"])]
    m = make_model(nodes, [("a", F, [2, 6, 19]), ("b3", F, [3, 1, 4, 6]), ("g", F, [19, 5]), ("h", F, [7, 19]),
                           ("v", F, [19])],
                   [("y0", F, None), ("y1", F, None), ("y2", F, None), ("y3", F, None)],
                   {"w": rand(19, 11, seed=60), "bias": rand(11, seed=61), "c": rand(5, 7, seed=62)})
    feeds = {"a": rand(2, 6, 19, seed=63), "b3": rand(3, 1, 4, 6, seed=64), "g": rand(19, 5, seed=65),
             "h": rand(7, 19, seed=66), "v": rand(19, seed=67)}
    check_model(m, feeds, device=device)

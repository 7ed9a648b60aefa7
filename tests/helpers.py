"""Build a model with edgec, run it, and compare with onnxruntime and onnx.reference."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

import edgec

OPSET = 17


def make_model(nodes: list[onnx.NodeProto], inputs: list[tuple[str, int, list[int]]],
               outputs: list[tuple[str, int, list[int] | None]],
               initializers: dict[str, np.ndarray] | None = None, opset: int = OPSET) -> onnx.ModelProto:
    """inputs/outputs: (name, onnx elem type, shape); initializers: name -> array."""
    g = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
        [onnx.numpy_helper.from_array(v, k) for k, v in (initializers or {}).items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    if any(s is None for _, _, s in outputs):  # let ONNX shape inference fill output shapes
        m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    onnx.checker.check_model(m)
    return m


def run_onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def run_reference(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model).run(None, feeds)


def run_edgec(model: onnx.ModelProto, feeds: dict[str, np.ndarray], device: str = "host",
              out_dir: Path | None = None, **build_kw: object) -> list[np.ndarray]:
    with tempfile.TemporaryDirectory(prefix="edgec-test-") as tmp:
        out = Path(out_dir or tmp) / f"bundle-{device}"
        edgec.build(model, device=device, out_dir=out, **build_kw)
        runner = edgec.load(out)
        res = runner.run(feeds)
        return [res[o.name] for o in model.graph.output]


def assert_close(got: np.ndarray, want: np.ndarray, tol: float = 1e-4, what: str = "") -> None:
    """max abs error <= tol * max(1, |ref|), elementwise; shapes and dtypes must agree."""
    want = np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    if want.dtype == bool or np.issubdtype(want.dtype, np.integer):
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    g64, w64 = got.astype(np.float64), want.astype(np.float64)
    nan = np.isnan(w64)
    assert np.array_equal(nan, np.isnan(g64)), f"{what}: NaN positions differ"
    err = np.abs(g64 - w64)[~nan]
    bound = tol * np.maximum(1.0, np.abs(w64))[~nan]
    inf = np.isinf(w64)[~nan]
    if inf.any():
        assert np.array_equal(g64[~nan][inf], w64[~nan][inf]), f"{what}: infinities differ"
        err, bound = err[~inf], bound[~inf]
    if err.size:
        worst = int(np.argmax(err - bound))
        assert (err <= bound).all(), (f"{what}: max abs error {err.max():.3g} exceeds tolerance "
                                      f"(worst element {worst}: err {err[worst]:.3g} > {bound[worst]:.3g})")


# Tests that pin a dispatch decision made for 8-lane AVX2 (tile sizes, K blocks, kernel choice)
# build for this profile instead of "host", whose lanes depend on the CI machine (AVX-512: 16).
# Its bundles run natively on any x86-64 host with AVX2.
AVX2 = "x86_64"


def check_model(model: onnx.ModelProto, feeds: dict[str, np.ndarray], device: str = "host",
                tol: float = 1e-4, reference: bool = True, **build_kw: object) -> list[np.ndarray]:
    """Compare edgec with onnxruntime (and with onnx.reference when `reference`)."""
    got = run_edgec(model, feeds, device, **build_kw)
    for k, want in enumerate(run_onnxruntime(model, feeds)):
        assert_close(got[k], want, tol, f"output {k} vs onnxruntime ({device})")
    if reference:
        for k, want in enumerate(run_reference(model, feeds)):
            assert_close(got[k], np.asarray(want), tol, f"output {k} vs onnx.reference ({device})")
    return got


def rand(*shape: int, seed: int = 0, low: float = -2.0, high: float = 2.0, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype(dtype)


def with_epilogue(nodes: list[onnx.NodeProto], residual: str | None = None,
                  act: str | None = None) -> list[onnx.NodeProto]:
    """`nodes` (the last one producing the chain's value) followed by `Add(value, residual)`
    and `act(value)` when given; the final output is renamed "y". The fusion tests' models."""
    nodes = list(nodes)
    last = nodes[-1].output[0]
    if residual:
        nodes.append(helper.make_node("Add", [last, residual], [f"{last}_res"]))
        last = f"{last}_res"
    if act:
        nodes.append(helper.make_node(act, [last], [f"{last}_act"]))
    nodes[-1].output[0] = "y"
    return nodes

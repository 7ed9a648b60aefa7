"""Target pass `integer-products` where the target has no byte dots (rpi4: no dotprod):
MatMulInteger on the float kernels gives onnxruntime's int32 results exactly while a weight
column's sum of |w - zp| times 255 stays below 2^24 (past that bound the integer kernel stays);
ConvInteger runs on the int16-pair kernels (QConvPrep + QConvDirect) on every target. The byte
dot paths: tests/ops/test_qgemm_dot.py, tests/ops/test_conv_integer.py."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.importer import import_model
from edgec.pipeline import run_pipeline, target_passes
from edgec.targets.profiles import get_profile
from tests.helpers import make_model, run_edgec, run_onnxruntime

RNG = np.random.default_rng(5)


def _ops(model, device: str = "rpi4") -> Counter:  # noqa: ANN001
    g = run_pipeline(run_pipeline(import_model(model)), target_passes(get_profile(device)))
    return Counter(n.op for n in g.nodes)


def _conv_integer(w: np.ndarray, xz: int = 131):  # noqa: ANN202
    nodes = [helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], pads=[1, 1, 1, 1])]
    inits = {"w": w, "xz": np.array(xz, np.uint8), "wz": np.array(3, np.uint8)}
    m, c = w.shape[:2]
    return make_model(nodes, [("x", T.UINT8, [1, c, 9, 9])], [("y", T.INT32, [1, m, 9, 9])], inits, opset=13)


def _matmul_integer(b: np.ndarray):  # noqa: ANN202
    nodes = [helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["y"])]
    inits = {"b": b, "az": np.array(7, np.uint8), "bz": np.full(b.shape[1], 128, np.uint8)}
    return make_model(nodes, [("a", T.UINT8, [20, b.shape[0]])], [("y", T.INT32, [20, b.shape[1]])], inits, opset=13)


@pytest.mark.parametrize("case", ["conv", "matmul"])
def test_exact_on_float_kernels(case: str) -> None:
    if case == "conv":
        m, feeds = _conv_integer(RNG.integers(0, 256, (16, 8, 3, 3)).astype(np.uint8)), \
            {"x": RNG.integers(0, 256, (1, 8, 9, 9)).astype(np.uint8)}
    else:
        m, feeds = _matmul_integer(RNG.integers(0, 256, (300, 40)).astype(np.uint8)), \
            {"a": RNG.integers(0, 256, (20, 300)).astype(np.uint8)}
    ops = _ops(m)
    assert not {"QConv", "QMatMul"} & set(ops), ops
    assert ops["QConvDirect"] == 1 if case == "conv" else ops["Cast"] == 1, ops
    got = run_edgec(m, feeds)[0]
    np.testing.assert_array_equal(got, run_onnxruntime(m, feeds)[0])


def test_runtime_zero_point_of_dynamic_quantization() -> None:
    """onnxruntime's dynamic quantization: DynamicQuantizeLinear gives x's zero point at run time."""
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
             helper.make_node("ConvInteger", ["xq", "w", "xz", "wz"], ["y"], pads=[1, 1, 1, 1])]
    inits = {"w": RNG.integers(0, 256, (16, 8, 3, 3)).astype(np.uint8), "wz": np.array(128, np.uint8)}
    m = make_model(nodes, [("x", T.FLOAT, [1, 8, 9, 9])], [("y", T.INT32, [1, 16, 9, 9])], inits, opset=13)
    assert "QConv" not in _ops(m) and "QConv" not in _ops(m, "host")
    feeds = {"x": RNG.normal(0, 1, (1, 8, 9, 9)).astype(np.float32)}
    np.testing.assert_array_equal(run_edgec(m, feeds)[0], run_onnxruntime(m, feeds)[0])


def test_past_the_bound_the_integer_kernel_stays() -> None:
    # 2048 inputs x |w - zp| up to 252 x 255 > 2^24: float sums could round
    b = np.where(RNG.random((2048, 8)) < 0.5, 0, 255).astype(np.uint8)
    m = _matmul_integer(b)
    assert "QMatMul" in _ops(m)
    feeds = {"a": RNG.integers(0, 256, (20, 2048)).astype(np.uint8)}
    np.testing.assert_array_equal(run_edgec(m, feeds)[0], run_onnxruntime(m, feeds)[0])

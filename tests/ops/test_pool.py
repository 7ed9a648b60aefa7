"""MaxPool, AveragePool and the global pools vs onnxruntime and onnx.reference (host), plus a
subset under qemu (rpi4 = aarch64, rpi3 = armv7)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.errors import ModelError
from edgec.importer import import_model
from edgec.pipeline import run_pipeline, target_passes
from edgec.targets import get_profile
from tests.helpers import check_model, make_model, rand

F = T.FLOAT


def pool_model(op: str, x_shape: list[int], opset: int = 17, elem: int = F, **attrs: object):
    return make_model([helper.make_node(op, ["x"], ["y"], **attrs)], [("x", elem, x_shape)],
                      [("y", elem, None)], opset=opset)


MAX_CASES = {
    "2x2-s2": ([1, 3, 8, 10], dict(kernel_shape=[2, 2], strides=[2, 2])),
    "3x3-s1-pad1": ([2, 2, 7, 9], dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
    "3x3-s2-pad1": ([1, 3, 12, 11], dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    "nonsquare-asym-pads": ([1, 2, 9, 8], dict(kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 0, 1])),
    "dilation": ([1, 2, 10, 9], dict(kernel_shape=[2, 3], dilations=[2, 2], pads=[1, 1, 1, 2])),
    "ceil": ([1, 2, 8, 9], dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    "ceil-pads": ([1, 2, 9, 10], dict(kernel_shape=[3, 4], strides=[2, 3], pads=[1, 1, 1, 1], ceil_mode=1)),
    "ceil-dilation": ([1, 2, 10, 11], dict(kernel_shape=[2, 2], strides=[3, 2], dilations=[2, 3], ceil_mode=1)),
    "same-upper": ([1, 2, 7, 8], dict(kernel_shape=[3, 2], strides=[2, 3], auto_pad="SAME_UPPER")),
    "same-lower": ([1, 2, 7, 8], dict(kernel_shape=[3, 2], strides=[2, 3], auto_pad="SAME_LOWER")),
    "valid": ([1, 2, 7, 8], dict(kernel_shape=[3, 2], strides=[2, 2], auto_pad="VALID")),
    "stride-gt-kernel": ([1, 2, 11, 12], dict(kernel_shape=[2, 2], strides=[3, 4])),
    "wide-row": ([1, 1, 4, 67], dict(kernel_shape=[2, 3], strides=[1, 1], pads=[0, 1, 1, 1])),
    "stem-3x3-s2": ([1, 4, 30, 70], dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    "wide-s3": ([1, 2, 6, 100], dict(kernel_shape=[3, 3], strides=[3, 3], pads=[1, 1, 1, 1], ceil_mode=1)),
    # YOLO SPP: windows mostly outside the map -> two 1-D passes (depthwise/pool_separable.py)
    "spp-13": ([1, 3, 13, 13], dict(kernel_shape=[13, 13], pads=[6, 6, 6, 6])),
    "spp-9-rect": ([1, 2, 11, 12], dict(kernel_shape=[9, 9], pads=[4, 4, 4, 4])),
}


# onnx.reference gets these wrong (SAME_LOWER output size; some ceil_mode windows with pads,
# checked by hand against a brute-force numpy average; the rank of GlobalMaxPool's output for
# rank != 4): onnxruntime only
REF_BROKEN = {"max-same-lower", "avg-asym-ceil-cip", "avg-ceil-big-kernel", "global-max-3", "global-max-5"}


@pytest.mark.parametrize("case", list(MAX_CASES))
def test_maxpool(case: str) -> None:
    xs, attrs = MAX_CASES[case]
    g = run_pipeline((run_pipeline(import_model(pool_model("MaxPool", xs, **attrs)))).copy(),
                     target_passes(get_profile("host")))
    assert [n.op for n in g.nodes] == ["MaxPoolDirect"]  # the vectorized kernel (depthwise_direct.py)
    check_model(pool_model("MaxPool", xs, **attrs), {"x": rand(*xs, seed=1)},
                reference=f"max-{case}" not in REF_BROKEN)


AVG_CASES = {
    "k3-s2-p1": ([1, 2, 9, 10], dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    "asym-pads": ([2, 2, 7, 8], dict(kernel_shape=[2, 3], pads=[1, 0, 0, 2])),
    # the last window of each row/column hangs past the (padded) end of the input
    "ceil-past-end": ([1, 2, 8, 9], dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    "ceil-pads": ([1, 2, 8, 9], dict(kernel_shape=[3, 2], strides=[2, 3], pads=[1, 1, 1, 1], ceil_mode=1)),
    "ceil-big-kernel": ([1, 1, 8, 7], dict(kernel_shape=[4, 5], strides=[3, 3], pads=[2, 1, 2, 1], ceil_mode=1)),
    "same-upper": ([1, 2, 7, 8], dict(kernel_shape=[3, 2], strides=[2, 3], auto_pad="SAME_UPPER")),
    "same-lower": ([1, 2, 7, 8], dict(kernel_shape=[3, 2], strides=[2, 3], auto_pad="SAME_LOWER")),
    "2x2-s2": ([1, 3, 8, 10], dict(kernel_shape=[2, 2], strides=[2, 2])),
}


@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("case", list(AVG_CASES))
def test_averagepool(case: str, count_include_pad: int) -> None:
    xs, attrs = AVG_CASES[case]
    m = pool_model("AveragePool", xs, count_include_pad=count_include_pad, **attrs)
    check_model(m, {"x": rand(*xs, seed=2)}, reference=f"avg-{case}" not in REF_BROKEN)


@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("ceil_mode", [0, 1])
def test_averagepool_dilations_opset19(count_include_pad: int, ceil_mode: int) -> None:
    m = pool_model("AveragePool", [1, 2, 9, 10], opset=19, kernel_shape=[2, 3], dilations=[2, 2],
                   strides=[2, 1], pads=[1, 1, 1, 1], count_include_pad=count_include_pad, ceil_mode=ceil_mode)
    check_model(m, {"x": rand(1, 2, 9, 10, seed=3)})


@pytest.mark.parametrize("op,opset", [("MaxPool", 8), ("MaxPool", 10), ("MaxPool", 12),
                                      ("AveragePool", 7), ("AveragePool", 10), ("AveragePool", 11)])
def test_pool_opsets(op: str, opset: int) -> None:
    attrs: dict = dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 1])
    if op == "AveragePool":
        attrs["count_include_pad"] = 1
    if opset >= 10:
        attrs["ceil_mode"] = 1
    check_model(pool_model(op, [1, 2, 10, 9], opset=opset, **attrs), {"x": rand(1, 2, 10, 9, seed=4)},
                reference=not (op == "AveragePool" and opset >= 10))  # asymmetric pads + ceil + cip


POOL1D_CASES = {
    "max-k3-s2-p1": ("MaxPool", dict(kernel_shape=[3], strides=[2], pads=[1, 1])),
    "max-ceil-dil": ("MaxPool", dict(kernel_shape=[3], strides=[2], dilations=[2], ceil_mode=1)),
    "max-same-upper": ("MaxPool", dict(kernel_shape=[4], strides=[3], auto_pad="SAME_UPPER")),
    "avg-cip-ceil": ("AveragePool", dict(kernel_shape=[4], strides=[3], pads=[2, 2], ceil_mode=1, count_include_pad=1)),
    "avg-asym-ceil-cip": ("AveragePool", dict(kernel_shape=[4], strides=[3], pads=[2, 1], ceil_mode=1, count_include_pad=1)),
    "avg-nocip": ("AveragePool", dict(kernel_shape=[3], strides=[1], pads=[1, 2])),
}


@pytest.mark.parametrize("case", list(POOL1D_CASES))
def test_pool_1d(case: str) -> None:
    op, attrs = POOL1D_CASES[case]
    check_model(pool_model(op, [2, 3, 17], **attrs), {"x": rand(2, 3, 17, seed=5)}, reference=case not in REF_BROKEN)


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("case", list(MAX_CASES))
def test_maxpool_bytes(case: str, dtype: str) -> None:
    """Quantized maps pool on the same vectorized kernel, 32 byte lanes on AVX2 (rows of 70 and
    100 reach whole vectors; the rest covers borders, ceil mode, dilation, tails)."""
    xs, attrs = MAX_CASES[case]
    elem = {"uint8": T.UINT8, "int8": T.INT8}[dtype]
    m = pool_model("MaxPool", xs, elem=elem, **attrs)
    g = run_pipeline(run_pipeline(import_model(m)).copy(), target_passes(get_profile("host")))
    assert [n.op for n in g.nodes] == ["MaxPoolDirect"]
    info = np.iinfo(dtype)
    x = np.random.default_rng(8).integers(info.min, info.max + 1, xs).astype(dtype)
    check_model(m, {"x": x}, reference=False)


@pytest.mark.parametrize("dtype", ["float64", "uint8", "int8"])
def test_maxpool_dtypes(dtype: str) -> None:
    elem = {"float64": T.DOUBLE, "uint8": T.UINT8, "int8": T.INT8}[dtype]
    m = pool_model("MaxPool", [1, 3, 7, 8], elem=elem, kernel_shape=[3, 3], strides=[2, 1], pads=[1, 1, 1, 1])
    if dtype == "float64":
        x = rand(1, 3, 7, 8, seed=6, dtype=np.float64)
    else:
        info = np.iinfo(dtype)
        x = np.random.default_rng(6).integers(info.min, info.max + 1, (1, 3, 7, 8)).astype(dtype)
    # onnx.reference pads int8 with NaN and fails; onnxruntime is the oracle there
    check_model(m, {"x": x}, reference=dtype != "int8")


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("shape", [[2, 3, 19], [1, 4, 7, 9], [1, 2, 3, 4, 5]])
def test_global_pool(op: str, shape: list[int]) -> None:
    key = f"global-{'max' if op == 'GlobalMaxPool' else 'avg'}-{len(shape)}"
    check_model(pool_model(op, shape), {"x": rand(*shape, seed=7)}, reference=key not in REF_BROKEN)


def test_global_pool_large_plane() -> None:
    """A long reduction (vectorized, reassociated) still within tolerance."""
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["a"]), helper.make_node("GlobalMaxPool", ["x"], ["b"])]
    m = make_model(nodes, [("x", F, [1, 3, 40, 50])], [("a", F, None), ("b", F, None)])
    check_model(m, {"x": rand(1, 3, 40, 50, seed=8)})


def test_pool_errors() -> None:
    # ceil_mode where the last window would start in the end padding: ONNX shape inference
    # keeps it, onnxruntime drops it
    m = pool_model("AveragePool", [1, 2, 7, 8], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 2, 1], ceil_mode=1)
    with pytest.raises(ModelError, match="ambiguous"):
        import_model(m)
    m = make_model([helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2, 2, 2])],
                   [("x", F, [1, 2, 4, 4, 4])], [("y", F, None), ("i", T.INT64, None)])
    with pytest.raises(ModelError, match="Indices output of a 3-D MaxPool"):
        import_model(m)
    with pytest.raises(ModelError, match="input rank 6 is not supported"):
        import_model(pool_model("MaxPool", [1, 2, 3, 3, 3, 3], kernel_shape=[2, 2, 2, 2]))
    with pytest.raises(ModelError, match="float64 is not supported"):
        import_model(pool_model("AveragePool", [1, 2, 4, 4], elem=T.DOUBLE, kernel_shape=[2, 2]))


INDEX_CASES = {
    "k2s2": dict(kernel_shape=[2, 2], strides=[2, 2]),
    "k3_pads_dil": dict(kernel_shape=[3, 3], pads=[1, 2, 2, 1], dilations=[2, 1]),
    "k3s2_ceil": dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
    "column_major": dict(kernel_shape=[3, 2], strides=[1, 2], storage_order=1),
}


@pytest.mark.parametrize("device", ["host", "rpi4"])
@pytest.mark.parametrize("case", list(INDEX_CASES))
def test_maxpool_indices(case: str, device: str) -> None:
    """MaxPool's second output (SegNet/ENet unpooling): flat indices into the whole input, as
    onnxruntime computes them; ties (small integers) go to the first tap in window order."""
    nodes = [helper.make_node("MaxPool", ["x"], ["y", "i"], **INDEX_CASES[case])]
    m = make_model(nodes, [("x", F, [2, 3, 9, 11])], [("y", F, None), ("i", T.INT64, None)])
    x = np.random.default_rng(4).integers(-3, 4, (2, 3, 9, 11)).astype(np.float32)
    check_model(m, {"x": x}, device=device, reference=False)


def test_maxpool_indices_1d_and_bytes() -> None:
    m = make_model([helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[3], strides=[2], pads=[1, 1])],
                   [("x", T.UINT8, [1, 4, 21])], [("y", T.UINT8, None), ("i", T.INT64, None)])
    check_model(m, {"x": np.random.default_rng(5).integers(0, 256, (1, 4, 21)).astype(np.uint8)}, reference=False)


@pytest.mark.parametrize("device", ["rpi4", "rpi3"])
def test_pool_arm(device: str) -> None:
    nodes = [helper.make_node("MaxPool", ["x"], ["a"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("AveragePool", ["x"], ["b"], kernel_shape=[3, 2], strides=[2, 2], pads=[1, 1, 1, 1],
                              ceil_mode=1, count_include_pad=1),
             helper.make_node("AveragePool", ["x"], ["c"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
             helper.make_node("GlobalAveragePool", ["x"], ["d"]),
             helper.make_node("GlobalMaxPool", ["x"], ["e"]),
             helper.make_node("MaxPool", ["x1d"], ["f"], kernel_shape=[3], strides=[2], dilations=[2], ceil_mode=1),
             helper.make_node("MaxPool", ["x"], ["g"], kernel_shape=[9, 9], pads=[4, 4, 4, 4])]  # separable
    m = make_model(nodes, [("x", F, [1, 3, 9, 10]), ("x1d", F, [1, 2, 21])],
                   [(o, F, None) for o in "abcdefg"])
    check_model(m, {"x": rand(1, 3, 9, 10, seed=9), "x1d": rand(1, 2, 21, seed=10)}, device=device)


def test_spp_pool_code_stays_small() -> None:
    """A 13x13 window over a 13x13 map is all border: the separable kernel's IR does not grow with
    k^4 (the direct kernel's unrolled borders made 5 s of LLVM work for one such pool)."""
    from edgec.codegen.executor import build_module
    from edgec.optimize.memory_plan import plan_memory
    from edgec.options import BuildOptions

    m = pool_model("MaxPool", [1, 8, 13, 13], kernel_shape=[13, 13], pads=[6, 6, 6, 6])
    g = run_pipeline(run_pipeline(import_model(m)).copy(), target_passes(get_profile("host")))
    kernel_text = build_module(g, plan_memory(g), get_profile("host"), "m", BuildOptions())[0]
    assert "rowmax" in kernel_text and len(kernel_text) < 20_000, len(kernel_text)
    x = rand(1, 8, 13, 13, seed=4)
    x[0, 2, 5, 5] = np.nan  # skipped, as onnxruntime does
    check_model(m, {"x": x})

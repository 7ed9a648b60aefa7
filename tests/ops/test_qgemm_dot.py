"""MatMulInteger with a constant B on the byte dot products (`QGemmDot`, prepare-qgemm): every
A/B signedness, with and without zero points (B zero points that leave B - zp outside int8 take
the row-sum correction), partial K quads, partial column vectors, row tiles plus a tail, batch
dims folded into rows, and a thread split. Results are exact int32, so the oracle is the integer
product itself; onnxruntime agrees where its own kernels cannot saturate (checked too).
Paths: VNNI (x86_64-avx512), vpmaddubsw (AVX2, only |B'| <= 64), sdot (rpi5 under qemu); rpi4
(no dotprod) and wide B on AVX2 keep the exact float path."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.importer import import_model
from edgec.pipeline import run_pipeline, target_passes
from edgec.targets.profiles import get_profile, host_profile
from tests.helpers import make_model, run_edgec, run_onnxruntime

HOST_VNNI = host_profile().int8_dot == "vnni"
HOST_AVX2 = host_profile().arch == "x86_64" and "+avx2" in host_profile().features.split(",")
ONNX_T = {np.uint8: T.UINT8, np.int8: T.INT8}

CASES = {  # (M, K, N, A type, B type, B zero point or None, batch dims)
    "projection_u8u8_zp": (20, 1024, 300, np.uint8, np.uint8, 119, ()),
    "batched_rows": (1, 100, 37, np.uint8, np.uint8, 119, (20,)),
    "s8s8_partial_quad": (7, 13, 37, np.int8, np.int8, 3, ()),
    "u8s8_symmetric": (5, 64, 16, np.uint8, np.int8, None, ()),
    "s8u8_batch": (3, 9, 5, np.int8, np.uint8, 200, (2,)),
    "row_vector": (1, 33, 70, np.uint8, np.int8, -5, ()),
}


def _ints(dt: type, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    lo = 0 if dt == np.uint8 else -128
    return rng.integers(lo, lo + 256, shape).astype(dt)


def _model(case: tuple, seed: int = 0, b_lim: int | None = None):  # noqa: ANN202
    """(model, feeds, exact int32 product); `b_lim`: int8 B within [-b_lim, b_lim]."""
    m, k, n, at, bt, bz, batch = case
    rng = np.random.default_rng(seed)
    b = _ints(bt, (k, n), rng) if b_lim is None else rng.integers(-b_lim, b_lim + 1, (k, n)).astype(np.int8)
    inits = {"B": b}
    ins = ["A", "B", "az"]
    if bz is not None:
        inits["bz"] = np.array(bz, bt)
        ins.append("bz")
    model = make_model([helper.make_node("MatMulInteger", ins, ["Y"])],
                       [("A", ONNX_T[at], [*batch, m, k]), ("az", ONNX_T[at], [])],
                       [("Y", T.INT32, [*batch, m, n])], inits)
    feeds = {"A": _ints(at, (*batch, m, k), rng), "az": np.array(_ints(at, (1,), rng)[0], at)}
    want = ((feeds["A"].astype(np.int64) - feeds["az"].astype(np.int64))
            @ (b.astype(np.int64) - (0 if bz is None else np.int64(bz)))).astype(np.int32)
    return model, feeds, want


def _ops(model, device: str) -> list[str]:  # noqa: ANN001
    g = run_pipeline(run_pipeline(import_model(model)), target_passes(get_profile(device)))
    return [n.op + (":" + n.attrs["dot"] if n.attrs.get("dot") else "") for n in g.nodes]


@pytest.mark.skipif(not HOST_VNNI, reason="needs an AVX-512 VNNI host")
@pytest.mark.parametrize("name", list(CASES))
def test_vnni(name: str) -> None:
    model, feeds, want = _model(CASES[name])
    assert "QGemmDot:vnni" in _ops(model, "x86_64-avx512")
    np.testing.assert_array_equal(run_edgec(model, feeds, "x86_64-avx512")[0], want)


def test_vnni_threads_split_columns() -> None:
    if not HOST_VNNI:
        pytest.skip("needs an AVX-512 VNNI host")
    model, feeds, want = _model((9, 256, 1000, np.uint8, np.uint8, 119, ()))
    np.testing.assert_array_equal(run_edgec(model, feeds, "x86_64-avx512", threads=2)[0], want)


@pytest.mark.skipif(not HOST_AVX2, reason="needs an AVX2 host")
@pytest.mark.parametrize("name", ["s8s8_partial_quad", "u8s8_symmetric", "row_vector"])
def test_avx2_only_with_small_weights(name: str) -> None:
    """vpmaddubsw saturates int16 pairs: taken only when every |B'| <= 64."""
    m, k, n, at, bt, bz, batch = CASES[name]
    case = (m, k, n, at, np.int8, 0, batch)
    model, feeds, want = _model(case)
    assert not any(op.startswith("QGemmDot") for op in _ops(model, "x86_64"))
    np.testing.assert_array_equal(run_edgec(model, feeds, "x86_64")[0], want)
    small, feeds, want = _model(case, seed=1, b_lim=64)
    assert "QGemmDot:u8s8" in _ops(small, "x86_64")
    np.testing.assert_array_equal(run_edgec(small, feeds, "x86_64")[0], want)
    np.testing.assert_array_equal(run_onnxruntime(small, feeds)[0], want)


@pytest.mark.parametrize("name", ["projection_u8u8_zp", "s8s8_partial_quad", "u8s8_symmetric", "s8u8_batch"])
def test_sdot_under_qemu(name: str) -> None:
    model, feeds, want = _model(CASES[name], seed=3)
    assert "QGemmDot:s8s8" in _ops(model, "rpi5")
    assert not any(op.startswith("QGemmDot") for op in _ops(model, "rpi4"))  # no dotprod there
    np.testing.assert_array_equal(run_edgec(model, feeds, "rpi5")[0], want)


def test_float_path_without_dots() -> None:
    """rpi4 (no dotprod): the exact float path of integer-as-float, also exact."""
    model, feeds, want = _model(CASES["s8u8_batch"], seed=4)
    ops = _ops(model, "rpi4")
    assert "DequantizeLinear" in ops and not any(op.startswith("QGemmDot") for op in ops)
    np.testing.assert_array_equal(run_edgec(model, feeds, "rpi4")[0], want)


@pytest.mark.skipif(not HOST_VNNI, reason="needs an AVX-512 VNNI host")
def test_matches_onnxruntime() -> None:
    model, feeds, want = _model(CASES["projection_u8u8_zp"], seed=5)
    np.testing.assert_array_equal(run_onnxruntime(model, feeds)[0], want)

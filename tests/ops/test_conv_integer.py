"""ConvInteger with a run-time input zero point (onnxruntime's dynamic quantization) on the
integer kernels (edgec/kernels/int8/dynamic_conv.py): byte quads + QConvOcvec with int32 output
where the centered weights fit int8 and the target has byte dots on x86 (VNNI; AVX2 with
|w| <= 64), int16 pairs (QConvPrep + QConvDirect) everywhere else (uint8 weights, groups,
depthwise, ARM). The zero point is a graph input here, so every build must read it at run time.
The oracle is onnx.reference, which computes ConvInteger in numpy integers (exact)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.importer import import_model
from edgec.pipeline import run_pipeline, target_passes
from edgec.targets.profiles import get_profile, host_profile
from tests.helpers import make_model, run_edgec, run_reference

HOST_VNNI = host_profile().int8_dot == "vnni"
HOST_AVX2 = host_profile().arch == "x86_64" and "+avx2" in host_profile().features.split(",")
ONNX_T = {np.uint8: T.UINT8, np.int8: T.INT8}

CASES = {  # M, C, H=W, kernel, stride, pads, group
    "dense3x3": (32, 24, 13, 3, 1, [1, 1, 1, 1], 1),
    "dense3x3_s2_odd_pads": (16, 5, 15, 3, 2, [1, 0, 1, 2], 1),
    "pointwise_flat": (48, 32, 9, 1, 1, [0, 0, 0, 0], 1),
    "stem_1ch": (24, 1, 17, 3, 2, [1, 1, 1, 1], 1),
    "grouped": (12, 8, 10, 3, 1, [1, 1, 1, 1], 2),
    "depthwise": (8, 8, 11, 3, 1, [1, 1, 1, 1], 8),
}


def _model(case: tuple, xt: type, wt: type, w_zp: int | np.ndarray, seed: int = 0,  # noqa: ANN202
           w_lim: int | None = None):
    m, c, hw, k, s, pads, group = case
    rng = np.random.default_rng(seed)
    lo = 0 if wt == np.uint8 else -128
    w = rng.integers(lo, lo + 256, (m, c // group, k, k)) if w_lim is None else \
        rng.integers(-w_lim, w_lim + 1, (m, c // group, k, k))
    oh = (hw + pads[0] + pads[2] - k) // s + 1
    ow = (hw + pads[1] + pads[3] - k) // s + 1
    node = helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], pads=pads, strides=[s, s], group=group)
    model = make_model([node], [("x", ONNX_T[xt], [1, c, hw, hw]), ("xz", ONNX_T[xt], [])],
                       [("y", T.INT32, [1, m, oh, ow])], {"w": w.astype(wt), "wz": np.asarray(w_zp).astype(wt)}, opset=13)
    xlo = 0 if xt == np.uint8 else -128
    feeds = {"x": rng.integers(xlo, xlo + 256, (1, c, hw, hw)).astype(xt),
             "xz": np.array(rng.integers(xlo, xlo + 256), xt)}
    return model, feeds


def _ops(model, device: str) -> list[str]:  # noqa: ANN001
    g = run_pipeline(run_pipeline(import_model(model)), target_passes(get_profile(device)))
    return [n.op + (":" + n.attrs["dot"] if n.attrs.get("dot") else "") for n in g.nodes]


def _check(model, feeds, device: str) -> None:  # noqa: ANN001
    np.testing.assert_array_equal(run_edgec(model, feeds, device)[0], run_reference(model, feeds)[0])


@pytest.mark.skipif(not HOST_VNNI, reason="needs an AVX-512 VNNI host")
@pytest.mark.parametrize("xt", [np.uint8, np.int8])
@pytest.mark.parametrize("name", ["dense3x3", "dense3x3_s2_odd_pads", "pointwise_flat"])
def test_vnni_quads(name: str, xt: type) -> None:
    case = CASES[name]
    if case[0] % 16:
        case = (32, *case[1:])
    model, feeds = _model(case, xt, np.int8, 0)
    ops = _ops(model, "x86_64-avx512")
    assert "QConvOcvec:vnni" in ops and "QConvQuads" in ops, ops
    _check(model, feeds, "x86_64-avx512")


@pytest.mark.parametrize("name", list(CASES))
def test_int16_pairs_for_uint8_weights(name: str) -> None:
    """uint8 weights with a zero point leave int8 once centered: without VNNI (AVX2 profile)
    the pair kernels; built for the host too (VNNI hosts: the shifted quads below)."""
    model, feeds = _model(CASES[name], np.uint8, np.uint8, 131, seed=1)
    ops = _ops(model, "x86_64")
    assert "QConvDirect" in ops and "QConvOcvec:u8s8" not in ops and "QConvOcvec:vnni" not in ops
    _check(model, feeds, "host")


@pytest.mark.skipif(not HOST_VNNI, reason="needs an AVX-512 VNNI host")
@pytest.mark.parametrize("wz", [131, np.arange(32) * 8])
@pytest.mark.parametrize("name", ["dense3x3", "dense3x3_s2_odd_pads", "pointwise_flat"])
def test_vnni_shifted_quads_for_uint8_weights(name: str, wz: int | np.ndarray) -> None:
    """VNNI: w - 128 on the byte dots plus (128 - w_zp) times the window sum of x - x_zp (one
    unit-weight channel on the pair kernel), per-tensor and per-channel weight zero points."""
    case = CASES[name]
    if case[0] % 16 or np.ndim(wz):
        case = (32, *case[1:])
    model, feeds = _model(case, np.uint8, np.uint8, wz, seed=6)
    ops = _ops(model, "x86_64-avx512")
    assert "QConvOcvec:vnni" in ops and "QConvDirect" in ops and "Add" in " ".join(ops), ops
    _check(model, feeds, "x86_64-avx512")


@pytest.mark.skipif(not HOST_AVX2, reason="needs an AVX2 host")
def test_avx2_quads_only_with_small_weights() -> None:
    case = CASES["dense3x3"]
    model, feeds = _model(case, np.uint8, np.int8, 0, seed=2)
    assert "QConvOcvec:u8s8" not in _ops(model, "x86_64")
    _check(model, feeds, "x86_64")
    model, feeds = _model(case, np.uint8, np.int8, 0, seed=3, w_lim=64)
    assert "QConvOcvec:u8s8" in _ops(model, "x86_64")
    _check(model, feeds, "x86_64")


@pytest.mark.parametrize("device", ["rpi4", "rpi3"])
@pytest.mark.parametrize("name", ["dense3x3_s2_odd_pads", "grouped"])
def test_pairs_under_qemu(device: str, name: str) -> None:
    model, feeds = _model(CASES[name], np.uint8, np.uint8, 120, seed=4)
    assert "QConvDirect" in _ops(model, device)
    _check(model, feeds, device)

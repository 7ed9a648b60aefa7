"""Resize (opsets 10-19) and Upsample (7-9) vs onnxruntime and onnx.reference.

Each model holds several Resize nodes reading the same input (one output each): one build
checks many mode / scale combinations. onnx.reference cannot run opset-10 Resize or linear /
fractional Upsample, so those compare with onnxruntime only.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.errors import ModelError
from tests.helpers import check_model, make_model, rand, run_edgec

F = T.FLOAT
COORDS = ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel"]
NEAREST = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
X_SHAPE = [1, 2, 5, 7]
# Scales on (H, W) where onnxruntime (float32 coordinates) and onnx.reference (float64) agree.
# align_corners differs between the two whenever scale*size is not an integer (onnx.reference
# divides by the unrounded output length), so it gets integer scales here.
SCALES = [[1, 1, 2, 3], [1, 1, 3, 0.5], [1, 1, 1.5, 0.75]]
AC_SCALES = [[1, 1, 2, 3]]
SIZES = [[1, 2, 9, 5], [1, 2, 3, 11], [1, 2, 10, 14], [1, 2, 4, 6], [1, 2, 2, 13]]
# Scales with exact-tie source coordinates: edgec follows onnxruntime's float32 arithmetic,
# where onnx.reference (float64) may round the other way; checked against onnxruntime only.
TIE_SCALES = [[1, 1, 0.5, 0.6], [1, 1, 1.7, 2.3], [1, 1, 1.6, 2.2], [1, 1, 0.8, 1.4],
              [1, 1, 0.6, 1.8], [1, 1, 2.4, 0.4]]


def f32(*v: float) -> np.ndarray:
    return np.array(v, np.float32)


def i64(*v: int) -> np.ndarray:
    return np.array(v, np.int64)


def resize_model(cases: list[dict], opset: int = 13, shape: list[int] = X_SHAPE, dtype: int = F):
    """cases: dicts of Resize attributes plus 'scales' or 'sizes' (constant inputs)."""
    nodes, inits = [], {}
    if opset < 13:  # roi and scales are required inputs before opset 13 (may be empty)
        inits["none"] = np.zeros(0, np.float32)
    for k, case in enumerate(cases):
        attrs = dict(case)
        scales, sizes = attrs.pop("scales", None), attrs.pop("sizes", None)
        ins = ["x", "", ""] if opset >= 13 else ["x", "none", "none"]
        if scales is not None:
            inits[f"sc{k}"] = f32(*scales)
            ins[2] = f"sc{k}"
        if sizes is not None:
            inits[f"sz{k}"] = i64(*sizes)
            ins.append(f"sz{k}")
        nodes.append(helper.make_node("Resize", ins, [f"y{k}"], **attrs))
    outs = [(f"y{k}", dtype, None) for k in range(len(cases))]
    return make_model(nodes, [("x", dtype, shape)], outs, inits, opset=opset)


def feeds(shape: list[int] = X_SHAPE) -> dict[str, np.ndarray]:
    return {"x": rand(*shape, seed=3, low=-5, high=5)}


@pytest.mark.parametrize("coord", COORDS)
def test_nearest(coord: str) -> None:
    scales = AC_SCALES if coord == "align_corners" else SCALES
    cases = [{"mode": "nearest", "coordinate_transformation_mode": coord, "nearest_mode": nm,
              "scales": s} for nm in NEAREST for s in scales]
    cases += [{"mode": "nearest", "coordinate_transformation_mode": coord, "nearest_mode": nm,
               "sizes": s} for nm in NEAREST for s in SIZES]
    check_model(resize_model(cases, opset=13), feeds())


@pytest.mark.parametrize("coord", [*COORDS, "tf_half_pixel_for_nn"])
def test_nearest_ties_vs_onnxruntime(coord: str) -> None:
    cases = [{"mode": "nearest", "coordinate_transformation_mode": coord, "nearest_mode": nm,
              "scales": s} for nm in NEAREST for s in TIE_SCALES + SCALES]
    check_model(resize_model(cases, opset=13), feeds(), reference=False)


@pytest.mark.parametrize("coord", COORDS)
def test_linear(coord: str) -> None:
    scales = AC_SCALES if coord == "align_corners" else SCALES + TIE_SCALES
    cases = [{"mode": "linear", "coordinate_transformation_mode": coord, "scales": s}
             for s in scales]
    cases += [{"mode": "linear", "coordinate_transformation_mode": coord, "sizes": s}
              for s in [*SIZES, [1, 2, 1, 1]]]
    check_model(resize_model(cases, opset=13), feeds())


def test_linear_vs_onnxruntime_only() -> None:
    # align_corners with fractional scale*size, and tf_half_pixel_for_nn (which onnx.reference
    # does not implement).
    cases = [{"mode": "linear", "coordinate_transformation_mode": c, "scales": s}
             for c in ("align_corners", "tf_half_pixel_for_nn") for s in SCALES + TIE_SCALES]
    check_model(resize_model(cases, opset=13), feeds(), reference=False)


def test_linear_default_attrs_opset11() -> None:
    # Defaults: mode nearest, half_pixel, round_prefer_floor; and linear with half_pixel.
    cases = [{"scales": [1, 1, 2, 2]}, {"mode": "linear", "scales": [1, 1, 2, 2]},
             {"mode": "linear", "sizes": [1, 2, 4, 4]}]
    check_model(resize_model(cases, opset=11), feeds())


@pytest.mark.parametrize("shape,scales", [
    ([1, 2, 3, 4, 5], [1, 1, 2, 1.5, 0.8]),  # trilinear, NCDHW
    ([1, 6, 5, 3], [1, 2, 0.6, 1]),  # NHWC-style: H and W in the middle
    ([6, 5], [1.5, 2.4]),  # 2-D
    ([3, 4, 5], [1, 2, 1.6]),  # 3-D
])
def test_linear_nd(shape: list[int], scales: list[float]) -> None:
    cases = [{"mode": "linear", "coordinate_transformation_mode": c, "scales": scales}
             for c in ("half_pixel", "align_corners", "asymmetric")]
    check_model(resize_model(cases, shape=shape), feeds(shape))


def test_nearest_int_dtypes() -> None:
    for dtype, np_dtype in [(T.UINT8, np.uint8), (T.INT32, np.int32)]:
        cases = [{"mode": "nearest", "scales": [1, 1, 2, 0.5]},
                 {"mode": "nearest", "nearest_mode": "floor", "sizes": [1, 2, 7, 3]}]
        m = resize_model(cases, dtype=dtype)
        x = np.arange(np.prod(X_SHAPE)).reshape(X_SHAPE).astype(np_dtype)
        check_model(m, {"x": x})


def test_opset18_axes_and_aspect_policy() -> None:
    cases = [{"mode": "linear", "axes": [2, 3], "scales": [2.0, 0.5]},
             {"mode": "nearest", "axes": [3], "sizes": [3]},
             {"mode": "linear", "axes": [3, 2], "sizes": [10, 4], "keep_aspect_ratio_policy": "not_larger"},
             {"mode": "nearest", "axes": [2, 3], "sizes": [3, 3], "keep_aspect_ratio_policy": "not_smaller"},
             {"mode": "linear", "sizes": [1, 2, 8, 8], "keep_aspect_ratio_policy": "not_larger"},
             {"mode": "linear", "antialias": 1, "scales": [1, 1, 2, 2]}]  # no-op when upsampling
    check_model(resize_model(cases, opset=18), feeds())
    # Negative axes: onnx.reference cannot run them, onnxruntime can.
    cases = [{"mode": "linear", "axes": [-1, -2], "scales": [0.5, 2.0]},
             {"mode": "nearest", "axes": [-2], "sizes": [8]}]
    check_model(resize_model(cases, opset=18), feeds(), reference=False)


def test_opset19_half_pixel_symmetric() -> None:
    # onnx.reference misplaces exactly-integer source coordinates when downsampling in this
    # mode (e.g. 7 -> 3 gives ~0 where the answer is x[1]); upsampling agrees with it.
    linear = [{"mode": "linear", "coordinate_transformation_mode": "half_pixel_symmetric",
               "scales": s} for s in [[1, 1, 2, 3], [1, 1, 1.7, 2.3], [1, 1, 1.6, 2.2]]]
    check_model(resize_model(linear, opset=19), feeds())
    cases = [{"mode": "linear", "coordinate_transformation_mode": "half_pixel_symmetric",
              "scales": s} for s in SCALES + TIE_SCALES]
    cases += [{"mode": "nearest", "coordinate_transformation_mode": "half_pixel_symmetric",
               "nearest_mode": nm, "scales": s} for nm in NEAREST for s in SCALES + TIE_SCALES[2:4]]
    check_model(resize_model(cases, opset=19), feeds(), reference=False)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_opset10(mode: str) -> None:
    scales = SCALES + TIE_SCALES
    nodes = [helper.make_node("Resize", ["x", f"s{k}"], [f"y{k}"], mode=mode)
             for k in range(len(scales))]
    inits = {f"s{k}": f32(*s) for k, s in enumerate(scales)}
    m = make_model(nodes, [("x", F, X_SHAPE)], [(f"y{k}", F, None) for k in range(len(scales))],
                   inits, opset=10)
    check_model(m, feeds(), reference=False)


@pytest.mark.parametrize("opset", [7, 8, 9])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample(opset: int, mode: str) -> None:
    scales = [[1.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.5, 2.5], [1.0, 1.0, 1.0, 2.0]]
    nodes, inits = [], {}
    for k, s in enumerate(scales):
        if opset >= 9:
            inits[f"s{k}"] = f32(*s)
            nodes.append(helper.make_node("Upsample", ["x", f"s{k}"], [f"y{k}"], mode=mode))
        else:
            nodes.append(helper.make_node("Upsample", ["x"], [f"y{k}"], mode=mode, scales=s))
    m = make_model(nodes, [("x", F, X_SHAPE)], [(f"y{k}", F, None) for k in range(3)], inits,
                   opset=opset)
    check_model(m, feeds(), reference=False)
    if mode == "nearest" and opset == 9:  # integer scales: onnx.reference can check these too
        m = make_model(nodes[:1], [("x", F, X_SHAPE)], [("y0", F, None)], {"s0": inits["s0"]},
                       opset=9)
        check_model(m, feeds())


@pytest.mark.parametrize("coord", COORDS)
def test_cubic(coord: str) -> None:
    scales = AC_SCALES if coord == "align_corners" else SCALES
    cases = [{"mode": "cubic", "coordinate_transformation_mode": coord, "scales": s, **extra}
             for s in scales for extra in ({}, {"cubic_coeff_a": -0.5, "exclude_outside": 1})]
    cases += [{"mode": "cubic", "coordinate_transformation_mode": coord, "sizes": s} for s in SIZES[:3]]
    check_model(resize_model(cases, opset=13), feeds(), tol=1e-3)


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_tf_crop_and_resize(mode: str) -> None:
    """A crop box partly outside the input: those outputs are extrapolation_value."""
    nodes = [helper.make_node("Resize", ["x", "roi", "", "sz"], ["y"], mode=mode,
                              coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=-9.0)]
    inits = {"roi": f32(0, 0, -0.2, 0.1, 1, 1, 0.7, 1.3), "sz": i64(1, 2, 6, 9)}
    check_model(make_model(nodes, [("x", F, X_SHAPE)], [("y", F, None)], inits, opset=13), feeds(), tol=1e-3)


@pytest.mark.parametrize("mode", ["linear", "cubic"])
def test_antialias_downsampling(mode: str) -> None:
    """antialias=1: the filter stretched by 1/scale when downsampling (the spec's definition)."""
    cases = [{"mode": mode, "antialias": 1, "scales": s} for s in ([1, 1, 0.5, 0.4], [1, 1, 0.8, 1.5])]
    cases += [{"mode": mode, "antialias": 1, "sizes": [1, 2, 3, 2]}]
    check_model(resize_model(cases, opset=18, shape=[1, 2, 9, 11]), feeds([1, 2, 9, 11]), tol=1e-3)


def test_unsupported_antialias_and_int_linear() -> None:
    m = resize_model([{"mode": "nearest", "antialias": 1, "scales": [1, 1, 0.5, 0.5]}], opset=18)
    with pytest.raises(ModelError, match="antialias"):
        run_edgec(m, feeds())
    m = resize_model([{"mode": "linear", "scales": [1, 1, 2, 2]}], dtype=T.UINT8)
    with pytest.raises(ModelError, match="float32"):
        run_edgec(m, {"x": np.zeros(X_SHAPE, np.uint8)})


@pytest.mark.parametrize("device", ["rpi4", "rpi3"])
def test_resize_arm(device: str) -> None:
    cases = [{"mode": "linear", "scales": [1, 1, 2, 1.5]},
             {"mode": "linear", "coordinate_transformation_mode": "align_corners", "sizes": [1, 2, 3, 4]},
             {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor",
              "scales": [1, 1, 2, 2]},
             {"mode": "nearest", "scales": [1, 1, 0.6, 1.7]}]
    check_model(resize_model(cases), feeds(), device=device)


@pytest.mark.parametrize("device", ["host", "rpi4"])
@pytest.mark.parametrize("shape", [[1, 1, 7, 7], [1, 64, 7, 7], [2, 3, 14, 9]])
def test_bilinear_upsample_of_planes(shape: list[int], device: str) -> None:
    """Upsamples of whole planes (MediaPipe's 2x FPN upsamples): one plane (its plain axes merged
    away), many planes, batches."""
    cases = [{"mode": "linear", "coordinate_transformation_mode": c, "scales": [1, 1, 2, 2]}
             for c in ("half_pixel", "align_corners", "asymmetric")]
    cases.append({"mode": "linear", "scales": [1, 1, 2.5, 1.5]})
    check_model(resize_model(cases, shape=shape), feeds(shape), device=device, reference=False)


@pytest.mark.parametrize("device", ["host", "rpi4", "rpi3"])
@pytest.mark.parametrize("shape,factor", [([1, 24, 20, 20], 2), ([2, 5, 7, 13], 2), ([1, 3, 9, 11], 4),
                                           ([1, 2, 5, 37], 8), ([1, 3, 4, 3], 2)])
def test_nearest_whole_factor_rows(device: str, shape: list[int], factor: int) -> None:
    """Whole-factor nearest upsampling as vector rows (edgec/kernels/generic/resize_nearest.py):
    exact on every ISA, rows with and without a partial vector."""
    scales = np.array([1, 1, factor, factor], np.float32)
    model = make_model([helper.make_node("Resize", ["x", "", "s"], ["y"], mode="nearest")],
                       [("x", T.FLOAT, shape)], [("y", T.FLOAT, None)], {"s": scales})
    x = rand(*shape, seed=3)
    want = np.repeat(np.repeat(x, factor, axis=2), factor, axis=3)
    np.testing.assert_array_equal(run_edgec(model, {"x": x}, device)[0], want)
    if shape[3] < 8:  # rows shorter than a vector: LLVM unrolls them as it likes
        return
    # the rows path, not the gather (scalar moves only): the Resize kernel's loops store vectors
    from edgec.asm import innermost_loops, kernel_assembly
    from edgec.targets import get_profile

    [(sym, asm)] = [(k, v) for k, v in kernel_assembly(model, device).items() if k.endswith("resize")]
    stores = {"x86_64": r"vmov(?!ss)\w* %[xyz]mm\d+, -?\d*\(", "aarch64": r"\bst(p|r|ur)\s+[qd]\d+|\bst1\s",
              "armv7": r"vst1\.|vstr\s+d|vstm"}[get_profile(device).arch]
    assert any(lp.count(stores) for lp in innermost_loops(asm, sym)), sym

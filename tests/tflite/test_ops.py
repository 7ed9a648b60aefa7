"""TFLite ops that mediapipe's models do not use (or not in these forms), in small models written
by tests/tflite/writer.py, compared with the LiteRT interpreter. Each model mixes the op with a
conv so both layouts are exercised (convert.py: tensors live in NCHW after a conv)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import edgec
from tests.tflite.test_mediapipe import close, inputs, litert
from tests.tflite.writer import Op, T, write

R = np.random.default_rng(7)


def _w(*shape: int) -> np.ndarray:
    return (R.standard_normal(shape) * 0.3).astype(np.float32)


def _conv(x: int, w: int, bias: int, y: int, **fields: object) -> Op:
    f = {"Padding": 0, "StrideW": 1, "StrideH": 1, "FusedActivationFunction": 0, **fields}
    return Op("CONV_2D", [x, w, bias], [y], "Conv2DOptions", f)


def _head(c_out: int = 4, hw: int = 8) -> list[T]:
    """x [1, hw, hw, 3] -> conv 3x3 SAME -> t1 [1, hw, hw, c_out] (tensors 0-3)."""
    return [T("x", [1, hw, hw, 3]), T("w", [c_out, 3, 3, 3], data=_w(c_out, 3, 3, 3)),
            T("b", [c_out], data=_w(c_out)), T("t1", [1, hw, hw, c_out])]


def case_softmax_relu6() -> tuple:
    t = _head() + [T("y", [1, 8, 8, 4])]
    return t, [_conv(0, 1, 2, 3, FusedActivationFunction=3), Op("SOFTMAX", [3], [4], "SoftmaxOptions", {"Beta": 0.5})]


def case_resize_nearest_half_pixel() -> tuple:
    t = _head() + [T("size", [2], np.int32, np.array([13, 19], np.int32)), T("y", [1, 13, 19, 4])]
    return t, [_conv(0, 1, 2, 3), Op("RESIZE_NEAREST_NEIGHBOR", [3, 4], [5], "ResizeNearestNeighborOptions",
                                     {"HalfPixelCenters": 1})]


def case_resize_bilinear_align_corners() -> tuple:
    t = _head() + [T("size", [2], np.int32, np.array([15, 11], np.int32)), T("y", [1, 15, 11, 4])]
    return t, [_conv(0, 1, 2, 3), Op("RESIZE_BILINEAR", [3, 4], [5], "ResizeBilinearOptions", {"AlignCorners": 1})]


def case_strided_slice_mean_fc() -> tuple:
    """NHWC-only ops after a conv: strided slice (masks, shrink), mean without keepdims, FC."""
    t = _head() + [T("begin", [4], np.int32, np.array([0, 1, 0, 1], np.int32)),
                   T("end", [4], np.int32, np.array([1, 7, 8, 3], np.int32)),
                   T("strides", [4], np.int32, np.array([1, 2, 1, 1], np.int32)),
                   T("s", [3, 8, 2]), T("axes", [1], np.int32, np.array([1], np.int32)), T("m", [3, 2]),
                   T("fw", [5, 2], data=_w(5, 2)), T("fb", [5], data=_w(5)), T("y", [3, 5])]
    return t, [_conv(0, 1, 2, 3),
               Op("STRIDED_SLICE", [3, 4, 5, 6], [7], "StridedSliceOptions", {"ShrinkAxisMask": 1, "EndMask": 4}),
               Op("MEAN", [7, 8], [9], "ReducerOptions", {"KeepDims": 0}),
               Op("FULLY_CONNECTED", [9, 10, 11], [12], "FullyConnectedOptions", {"FusedActivationFunction": 1})]


def case_elementwise_broadcast_concat() -> tuple:
    """SUB/DIV/MAXIMUM with per-channel constants in NCHW, LEAKY_RELU, TANH, CONCATENATION."""
    t = _head() + [T("c", [4], data=_w(4)), T("d", [4], data=(np.abs(_w(4)) + 0.5)), T("a", [1, 8, 8, 4]),
                   T("bb", [1, 8, 8, 4]), T("cc", [1, 8, 8, 4]), T("dd", [1, 8, 8, 4]), T("ee", [1, 8, 8, 4]),
                   T("y", [1, 8, 8, 8])]
    return t, [_conv(0, 1, 2, 3), Op("SUB", [3, 4], [6], "SubOptions", {}), Op("DIV", [6, 5], [7], "DivOptions", {}),
               Op("MAXIMUM", [7, 3], [8]), Op("LEAKY_RELU", [8], [9], "LeakyReluOptions", {"Alpha": 0.2}),
               Op("TANH", [3], [10]), Op("CONCATENATION", [9, 10], [11], "ConcatenationOptions", {"Axis": 3})]


def case_pool_pad_depthwise() -> tuple:
    """AVERAGE_POOL SAME (TF excludes the padding), PADV2 with a value, depth multiplier 2."""
    t = _head() + [T("p", [1, 8, 8, 4]), T("pads", [4, 2], np.int32, np.array([[0, 0], [1, 2], [0, 1], [0, 0]], np.int32)),
                   T("v", [], data=np.array(0.25, np.float32)), T("q", [1, 11, 9, 4]),
                   T("dw", [1, 3, 3, 8], data=_w(1, 3, 3, 8)), T("db", [8], data=_w(8)), T("y", [1, 6, 5, 8])]
    return t, [_conv(0, 1, 2, 3),
               Op("AVERAGE_POOL_2D", [3], [4], "Pool2DOptions",
                  {"Padding": 0, "StrideW": 1, "StrideH": 1, "FilterWidth": 3, "FilterHeight": 3}),
               Op("PADV2", [4, 5, 6], [7]),
               Op("DEPTHWISE_CONV_2D", [7, 8, 9], [10], "DepthwiseConv2DOptions",
                  {"Padding": 0, "StrideW": 2, "StrideH": 2, "DepthMultiplier": 2})]


def case_transpose_conv_split() -> tuple:
    t = _head() + [T("shape", [4], np.int32, np.array([1, 16, 16, 2], np.int32)), T("tw", [2, 3, 3, 4], data=_w(2, 3, 3, 4)),
                   T("u", [1, 16, 16, 2]), T("axis", [], np.int32, np.array(3, np.int32)),
                   T("y0", [1, 16, 16, 1]), T("y1", [1, 16, 16, 1])]
    return t, [_conv(0, 1, 2, 3), Op("TRANSPOSE_CONV", [4, 5, 3], [6], "TransposeConvOptions",
                                     {"Padding": 0, "StrideW": 2, "StrideH": 2}),
               Op("SPLIT", [7, 6], [8, 9], "SplitOptions", {"NumSplits": 2})]


def case_int8_weights() -> tuple:
    """int8 per-channel conv weights through DEQUANTIZE (folded at build time)."""
    q = R.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)
    scale = [0.01, 0.02, 0.005, 0.03]
    t = [T("x", [1, 8, 8, 3]), T("wq", [4, 3, 3, 3], np.int8, q, scale=scale, zero_point=[0] * 4),
         T("w", [4, 3, 3, 3]), T("b", [4], data=_w(4)), T("y", [1, 8, 8, 4])]
    return t, [Op("DEQUANTIZE", [1], [2]), _conv(0, 2, 3, 4, FusedActivationFunction=1)]


CASES = {k[5:]: v for k, v in dict(globals()).items() if k.startswith("case_")}


@pytest.mark.parametrize("case", list(CASES))
def test_op_matches_litert(case: str, tmp_path: Path) -> None:
    tensors, ops = CASES[case]()
    outs = [i for op in ops for i in op.outputs if not any(i in o.inputs for o in ops)]
    path = tmp_path / f"{case}.tflite"
    path.write_bytes(write(tensors, ops, [0], outs))
    feeds = inputs(path)
    got = edgec.load(edgec.build(path, out_dir=tmp_path / "b").path).run(feeds)
    close(got, litert(path, feeds, xnnpack=False), case)


def _q8(name: str, shape: list[int], scale: float, zp: int) -> T:
    return T(name, shape, np.int8, scale=[scale], zero_point=[zp])


def _int8_conv_weights(shape: tuple, axis: int, s_in: float) -> tuple[T, T]:
    """int8 weights quantized per channel along `axis`, and the int32 bias at s_in * s_w."""
    w = R.standard_normal(shape).astype(np.float32) * 0.3
    other = tuple(a for a in range(len(shape)) if a != axis)
    s_w = np.abs(w).max(axis=other) / 127
    q = np.clip(np.round(w / np.expand_dims(s_w, other)), -127, 127).astype(np.int8)
    bias = R.integers(-500, 500, s_w.size).astype(np.int32)
    return (T("wq", list(shape), np.int8, q, scale=s_w.tolist(), zero_point=[0] * s_w.size, quant_axis=axis),
            T("bq", [s_w.size], np.int32, bias, scale=(s_in * s_w).tolist(), zero_point=[0] * s_w.size))


def test_int8_float_io(tmp_path: Path) -> None:
    """QUANTIZE -> int8 CONV_2D (per-channel weights, int32 bias, fused RELU) -> MAX_POOL ->
    DEQUANTIZE: the QDQ form edgec folds into integer kernels; within one output step of LiteRT."""
    s_in, s_out = 0.02, 0.05
    w, bias = _int8_conv_weights((6, 3, 3, 3), 0, s_in)
    t = [T("x", [1, 10, 10, 3]), _q8("xq", [1, 10, 10, 3], s_in, -3), w, bias, _q8("c", [1, 10, 10, 6], s_out, -10),
         _q8("p", [1, 5, 5, 6], s_out, -10), T("y", [1, 5, 5, 6])]
    ops = [Op("QUANTIZE", [0], [1]), _conv(1, 2, 3, 4, FusedActivationFunction=1),
           Op("MAX_POOL_2D", [4], [5], "Pool2DOptions", {"Padding": 1, "StrideW": 2, "StrideH": 2,
                                                          "FilterWidth": 2, "FilterHeight": 2}),
           Op("DEQUANTIZE", [5], [6])]
    path = tmp_path / "q.tflite"
    path.write_bytes(write(t, ops, [0], [6]))
    feeds = inputs(path)
    got = edgec.load(edgec.build(path, out_dir=tmp_path / "b").path).run(feeds)["y"]
    want = litert(path, feeds, xnnpack=False)["y"]
    assert np.abs(got - want).max() <= s_out * 1.01, np.abs(got - want).max()
    assert np.abs(want).max() > 10 * s_out  # not a trivially zero output


def test_int8_io_depthwise_add(tmp_path: Path) -> None:
    """int8 in, int8 out: DEPTHWISE_CONV_2D (weights quantized along their last axis) and an
    ADD of two int8 tensors with other scales; LiteRT's integers within one step."""
    s_in = 0.03
    w, bias = _int8_conv_weights((1, 3, 3, 4), 3, s_in)
    t = [_q8("x", [1, 8, 8, 4], s_in, 5), w, bias, _q8("d", [1, 8, 8, 4], 0.04, -2), _q8("y", [1, 8, 8, 4], 0.06, 1)]
    ops = [Op("DEPTHWISE_CONV_2D", [0, 1, 2], [3], "DepthwiseConv2DOptions",
              {"Padding": 0, "StrideW": 1, "StrideH": 1, "DepthMultiplier": 1}),
           Op("ADD", [3, 0], [4], "AddOptions", {})]
    path = tmp_path / "q.tflite"
    path.write_bytes(write(t, ops, [0], [4]))
    x = np.random.default_rng(3).integers(-128, 128, (1, 8, 8, 4)).astype(np.int8)
    got = edgec.load(edgec.build(path, out_dir=tmp_path / "b").path).run({"x": x})["y"]
    want = litert(path, {"x": x}, xnnpack=False)["y"]
    assert got.dtype == np.int8 and np.abs(got.astype(int) - want).max() <= 1
    assert np.abs(want.astype(int)).max() > 20

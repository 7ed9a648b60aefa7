"""Resize (opsets 10-19) and Upsample (7-9) -> one normalized IR op:

  Resize{mode: nearest|linear|cubic, coordinate_transformation_mode, nearest_mode, scales,
         cubic_coeff_a, exclude_outside}

`scales` is one float32 value per axis, already resolved from the scales or sizes input, the
opset-18 `axes` attribute and keep_aspect_ratio_policy; the output shape comes from shape
inference. Opset 10 Resize and Upsample have no coordinate mode: they are "asymmetric" with the
legacy nearest rule "simple" (ceil when downsampling, else floor), as onnxruntime implements.
"""

from __future__ import annotations

import numpy as np
import onnx

from edgec.errors import ModelError
from edgec.importer.context import ConvertContext
from edgec.importer.registry import converter
from edgec.importer.validate import show, where

COORD_MODES = ("half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel",
               "tf_half_pixel_for_nn", "half_pixel_symmetric")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")



def _check_mode(node: onnx.NodeProto, mode: str, dtype: np.dtype) -> None:
    if mode not in ("nearest", "linear", "cubic"):
        raise ModelError(f"{where(node)}: unknown mode {show(mode)}")
    if mode != "nearest" and dtype != np.float32:
        raise ModelError(f"{where(node)}: {mode} mode is supported for float32 only, not {dtype}")


def _emit(cx: ConvertContext, node: onnx.NodeProto, mode: str, coord: str, nearest: str,
          scales: list[float], cubic: tuple[float, int] = (-0.75, 0), crop: dict | None = None) -> None:
    x, y = node.input[0], node.output[0]
    in_shape, out_shape = cx.shape(x), cx.shape(y)
    if any(s <= 0 or not np.isfinite(s) for s in scales):
        raise ModelError(f"{where(node)}: scales {scales} must be positive")
    if any(i == 0 and o != 0 for i, o in zip(in_shape, out_shape)):
        raise ModelError(f"{where(node)}: cannot resize an empty axis to a non-empty one")
    # No shortcut for "same shape": tf_half_pixel_for_nn with scale 1 still moves pixels; the
    # kernel sees identity tables and emits a plain copy when the mapping really is one.
    extra = {"cubic_coeff_a": float(cubic[0]), "exclude_outside": int(cubic[1])} if mode == "cubic" else {}
    extra |= crop or {}
    cx.emit("Resize", [x], [y], node.name, mode=mode, coordinate_transformation_mode=coord,
            nearest_mode=nearest, scales=[float(s) for s in scales], **extra)


def _const_or_none(cx: ConvertContext, node: onnx.NodeProto, index: int,
                   what: str) -> np.ndarray | None:
    if not cx.input(node, index):
        return None
    data = cx.require_const(node, index, what)
    return data if data.size else None


@converter("Resize")
def convert_resize(cx: ConvertContext, node: onnx.NodeProto) -> None:
    a = cx.attrs(node)
    x = node.input[0]
    in_shape = cx.shape(x)
    rank = len(in_shape)
    mode = a.get("mode", "nearest")
    _check_mode(node, mode, cx.value(x).dtype)
    if cx.opset < 11:
        scales = cx.require_const(node, 1, "scales").astype(np.float32).ravel().tolist()
        if len(scales) != rank:
            raise ModelError(f"{where(node)}: {len(scales)} scales for rank {rank}")
        _emit(cx, node, mode, "asymmetric", "simple", scales)
        return

    coord = a.get("coordinate_transformation_mode", "half_pixel")
    nearest = a.get("nearest_mode", "round_prefer_floor")
    if coord not in (*COORD_MODES, "tf_crop_and_resize") or (coord == "half_pixel_symmetric" and cx.opset < 19):
        raise ModelError(f"{where(node)}: coordinate_transformation_mode {show(coord)} is not "
                         f"supported at opset {cx.opset}")
    if mode == "nearest" and nearest not in NEAREST_MODES:
        raise ModelError(f"{where(node)}: nearest_mode {show(nearest)} is not supported")
    axes = [int(v) for v in a.get("axes", [])] if cx.opset >= 18 else []
    axes = [v + rank if v < 0 else v for v in axes] or list(range(rank))
    if sorted(set(axes)) != sorted(axes) or any(not 0 <= v < rank for v in axes):
        raise ModelError(f"{where(node)}: invalid axes {axes}")
    policy = a.get("keep_aspect_ratio_policy", "stretch") if cx.opset >= 18 else "stretch"

    given = _const_or_none(cx, node, 2, "scales")
    sizes = _const_or_none(cx, node, 3, "sizes")
    scales = [1.0] * rank
    if given is not None:
        vals = np.asarray(given, dtype=np.float32).ravel()
        if vals.size != len(axes):
            raise ModelError(f"{where(node)}: {vals.size} scales for {len(axes)} axes")
        for ax, s in zip(axes, vals):
            scales[ax] = float(s)
    elif sizes is not None:
        vals = np.asarray(sizes, dtype=np.int64).ravel()
        if vals.size != len(axes):
            raise ModelError(f"{where(node)}: {vals.size} sizes for {len(axes)} axes")
        ratio = {ax: float(np.float32(s) / np.float32(in_shape[ax]) if in_shape[ax] else 1.0)
                 for ax, s in zip(axes, vals)}
        if policy in ("not_larger", "not_smaller"):
            pick = min if policy == "not_larger" else max
            common = pick(ratio.values())
            ratio = dict.fromkeys(ratio, common)
        elif policy != "stretch":
            raise ModelError(f"{where(node)}: keep_aspect_ratio_policy {show(policy)} is unknown")
        for ax, s in ratio.items():
            scales[ax] = s
    else:
        raise ModelError(f"{where(node)}: needs a scales or a sizes input")
    antialias = int(a.get("antialias", 0)) if cx.opset >= 18 else 0
    if antialias and mode == "nearest":
        raise ModelError(f"{where(node)}: antialias=1 applies to linear and cubic modes only")
    cubic = (float(a.get("cubic_coeff_a", -0.75)), int(a.get("exclude_outside", 0)))
    crop = _crop_attrs(cx, node, axes, float(a.get("extrapolation_value", 0.0))) \
        if coord == "tf_crop_and_resize" else {}
    if antialias and any(s < 1 for s in scales):
        crop["antialias"] = 1
        crop.setdefault("exclude_outside", int(a.get("exclude_outside", 0)))
    _emit(cx, node, mode, coord, nearest, scales, cubic, crop)


def _crop_attrs(cx: ConvertContext, node: onnx.NodeProto, axes: list[int], extrapolation: float) -> dict:
    """tf_crop_and_resize: the roi input as (starts of every axis, ends of every axis)."""
    rank = len(cx.shape(node.input[0]))
    roi = cx.require_const(node, 1, "roi") if cx.input(node, 1) else np.zeros(0)
    vals = np.asarray(roi, np.float32).ravel()
    if vals.size != 2 * len(axes) or not np.isfinite(vals).all():
        raise ModelError(f"{where(node)}: roi has {vals.size} values, expected {2 * len(axes)} finite ones")
    starts, ends = [0.0] * rank, [1.0] * rank
    for k, ax in enumerate(axes):
        starts[ax], ends[ax] = float(vals[k]), float(vals[len(axes) + k])
    return {"roi": starts + ends, "extrapolation_value": extrapolation}


@converter("Upsample")
def convert_upsample(cx: ConvertContext, node: onnx.NodeProto) -> None:
    a = cx.attrs(node)
    x = node.input[0]
    mode = a.get("mode", "nearest")
    _check_mode(node, mode, cx.value(x).dtype)
    if cx.opset >= 9:
        scales = cx.require_const(node, 1, "scales")
    else:
        scales = a.get("scales")
        if scales is None:
            raise ModelError(f"{where(node)}: missing scales attribute")
    scales = np.asarray(scales, dtype=np.float32).ravel().tolist()
    if len(scales) != len(cx.shape(x)) or any(s < 1 for s in scales):
        raise ModelError(f"{where(node)}: scales {scales} must be >= 1, one per axis")
    _emit(cx, node, mode, "asymmetric", "simple", scales)

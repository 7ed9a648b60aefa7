"""Reductions, ArgMax/ArgMin and Softmax/LogSoftmax.

Every opset style is normalized to static attributes:
- Reduce*: `axes` = sorted tuple of non-negative axes (from the attribute, or from the constant
  `axes` input for ReduceSum opset 13+ and every reduce opset 18+); `keepdims` only changes the
  output shape, which the IR value already carries.
- ArgMax/ArgMin: non-negative `axis`, `keepdims`, `select_last_index`.
- Softmax/LogSoftmax: `axes` = the contiguous dims normalized over (opset < 13 coerces the input
  to 2-D at `axis`, so that is every dim from `axis` on; opset 13+ is the single `axis`).
"""

from __future__ import annotations

import numpy as np
import onnx

from edgec.errors import ModelError
from edgec.importer.context import ConvertContext
from edgec.importer.registry import converter
from edgec.importer.validate import where

REDUCE_OPS = ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
              "ReduceSumSquare", "ReduceLogSumExp", "ReduceLogSum"]
# The opset from which `axes` is an input instead of an attribute.
_AXES_INPUT_SINCE = {"ReduceSum": 13}
# Ops that need a float result (mean divides, the others take a sqrt/log/exp).
_FLOAT_ONLY = {"ReduceMean", "ReduceL2", "ReduceLogSumExp", "ReduceLogSum"}
# Reductions whose single-element result is the element itself: they become aliases.
_PLAIN = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd"}
FLOATS = {"float32", "float64"}
NUMBERS = FLOATS | {"int32", "int64", "uint32", "uint64"}


def _dtype(cx: ConvertContext, node: onnx.NodeProto, allowed: set[str]) -> np.dtype:
    dt = np.dtype(cx.value(node.input[0]).dtype)
    if dt.name not in allowed:
        raise ModelError(f"{where(node)}: element type {dt.name} is not supported "
                         f"(supported: {', '.join(sorted(allowed))})")
    return dt


def normalize_axis(node: onnx.NodeProto, axis: int, rank: int) -> int:
    if not -rank <= int(axis) < max(rank, 1):
        raise ModelError(f"{where(node)}: axis {axis} is out of range for rank {rank}")
    return int(axis) % max(rank, 1)


@converter(*REDUCE_OPS)
def convert_reduce(cx: ConvertContext, node: onnx.NodeProto) -> None:
    at = cx.attrs(node)
    x, y = node.input[0], node.output[0]
    allowed = NUMBERS | {"bool"} if node.op_type in ("ReduceMax", "ReduceMin") else NUMBERS  # opset 20
    _dtype(cx, node, FLOATS if node.op_type in _FLOAT_ONLY else allowed)
    shape = cx.shape(x)
    noop = False
    if cx.opset >= _AXES_INPUT_SINCE.get(node.op_type, 18):
        raw = cx.require_const(node, 1, "axes") if cx.input(node, 1) else np.zeros(0, np.int64)
        noop = bool(at.get("noop_with_empty_axes", 0))
    else:
        raw = np.asarray(at.get("axes", []), dtype=np.int64)
    axes = sorted({normalize_axis(node, a, len(shape)) for a in np.asarray(raw).reshape(-1).tolist()})
    if not axes and not noop:
        axes = list(range(len(shape)))
    # With noop_with_empty_axes the op is still applied to each element (ReduceL2 -> |x|, ...).
    if node.op_type in _PLAIN and all(shape[a] == 1 for a in axes):
        cx.emit("Reshape", [x], [y], node.name)
        return
    cx.emit(node.op_type, [x], [y], node.name, axes=tuple(axes), keepdims=int(at.get("keepdims", 1)))


@converter("ArgMax", "ArgMin")
def convert_arg(cx: ConvertContext, node: onnx.NodeProto) -> None:
    at = cx.attrs(node)
    _dtype(cx, node, NUMBERS)
    rank = len(cx.shape(node.input[0]))
    if rank == 0:
        raise ModelError(f"{where(node)}: input must have rank >= 1")
    axis = normalize_axis(node, at.get("axis", 0), rank)
    cx.emit(node.op_type, [node.input[0]], [node.output[0]], node.name, axis=axis,
            keepdims=int(at.get("keepdims", 1)), select_last_index=bool(at.get("select_last_index", 0)))


@converter("Softmax", "LogSoftmax")
def convert_softmax(cx: ConvertContext, node: onnx.NodeProto) -> None:
    at = cx.attrs(node)
    _dtype(cx, node, FLOATS)
    rank = len(cx.shape(node.input[0]))
    if rank == 0:
        raise ModelError(f"{where(node)}: input must have rank >= 1")
    if cx.opset < 13:
        axis = normalize_axis(node, at.get("axis", 1), rank)
        axes = tuple(range(axis, rank))
    else:
        axes = (normalize_axis(node, at.get("axis", -1), rank),)
    cx.emit(node.op_type, [node.input[0]], [node.output[0]], node.name, axes=axes)

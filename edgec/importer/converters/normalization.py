"""InstanceNormalization, LayerNormalization and GroupNormalization.

IR attributes: `epsilon` (all), `axis` (LayerNormalization, non-negative), `num_groups`
(GroupNormalization). GroupNormalization follows opset 21 (scale/bias per channel): the opset-18
schema (per-group scale/bias) is deprecated and models using it fail `onnx.checker` at import.
"""

from __future__ import annotations

import numpy as np
import onnx

from edgec.errors import ModelError
from edgec.importer.context import ConvertContext
from edgec.importer.converters.reduce import FLOATS, normalize_axis
from edgec.importer.registry import converter
from edgec.importer.validate import where

_FLOAT32 = onnx.TensorProto.FLOAT


def _check(cx: ConvertContext, node: onnx.NodeProto, min_rank: int) -> tuple[int, ...]:
    x = node.input[0]
    dt = np.dtype(cx.value(x).dtype)
    if dt.name not in FLOATS:
        raise ModelError(f"{where(node)}: element type {dt.name} is not supported "
                         f"(supported: {', '.join(sorted(FLOATS))})")
    shape = cx.shape(x)
    if len(shape) < min_rank:
        raise ModelError(f"{where(node)}: input must have rank >= {min_rank}, "
                         f"got shape {shape}")
    stash = cx.attrs(node).get("stash_type", _FLOAT32)
    if stash != _FLOAT32:
        raise ModelError(f"{where(node)}: stash_type {stash} is not supported "
                         "(only 1 = float32)")
    return shape


def _channel_vector(cx: ConvertContext, node: onnx.NodeProto, index: int, channels: int) -> str:
    name = cx.input(node, index)
    if tuple(cx.shape(name)) != (channels,):
        raise ModelError(f"{where(node)}: input {index} must have shape "
                         f"({channels},), got {cx.shape(name)}")
    return name


@converter("InstanceNormalization")
def convert_instance_norm(cx: ConvertContext, node: onnx.NodeProto) -> None:
    shape = _check(cx, node, 3)
    scale = _channel_vector(cx, node, 1, shape[1])
    bias = _channel_vector(cx, node, 2, shape[1])
    eps = float(cx.attrs(node).get("epsilon", 1e-5))
    cx.emit("InstanceNormalization", [node.input[0], scale, bias], [node.output[0]], node.name, epsilon=eps)


@converter("GroupNormalization")
def convert_group_norm(cx: ConvertContext, node: onnx.NodeProto) -> None:
    at = cx.attrs(node)
    shape = _check(cx, node, 3)
    groups = int(at["num_groups"])
    if groups <= 0 or shape[1] % groups:
        raise ModelError(f"{where(node)}: {shape[1]} channels cannot be split "
                         f"into {groups} groups")
    scale = _channel_vector(cx, node, 1, shape[1])
    bias = _channel_vector(cx, node, 2, shape[1])
    cx.emit("GroupNormalization", [node.input[0], scale, bias], [node.output[0]], node.name,
            num_groups=groups, epsilon=float(at.get("epsilon", 1e-5)))


@converter("LayerNormalization")
def convert_layer_norm(cx: ConvertContext, node: onnx.NodeProto) -> None:
    at = cx.attrs(node)
    shape = _check(cx, node, 1)
    axis = normalize_axis(node, at.get("axis", -1), len(shape))
    norm_shape = shape[axis:]
    inputs = [node.input[0]]
    for k, what in ((1, "Scale"), (2, "B")):
        name = cx.input(node, k)
        if name and not _broadcasts_to(cx.shape(name), norm_shape):
            raise ModelError(f"{where(node)}: {what} shape {cx.shape(name)} "
                             f"does not broadcast to the normalized shape {norm_shape}")
        inputs.append(name)
    while inputs[-1] == "":
        inputs.pop()
    # Mean and InvStdDev (outputs 1 and 2) come from the same kernel when requested. The IR has
    # no empty outputs: a skipped Mean before a used InvStdDev gets a scratch value.
    outputs = list(node.output)
    while outputs[-1] == "":
        outputs.pop()
    stat_shape = tuple(shape[:axis]) + (1,) * (len(shape) - axis)
    outputs = [o or cx.temp(f"{node.output[0]}_stat", np.float32, stat_shape) for o in outputs]
    cx.emit("LayerNormalization", inputs, outputs, node.name, axis=axis,
            epsilon=float(at.get("epsilon", 1e-5)))


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Unidirectional (numpy) broadcast of `shape` to `target`."""
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(shape[::-1], target[::-1]))

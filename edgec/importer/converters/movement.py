"""Data-movement ops. Every opset variant (attributes that became inputs, optional inputs,
negative axes, clamped slice bounds) is normalized here into one static IR form:

  Concat{axis}                      Split{axis}  (piece sizes are the output shapes)
  Transpose{perm}                   Slice{starts, ends, steps} (per axis, clamped)
  Pad{pads (2*rank), mode, value}   Expand{}  Tile{}   Gather{axis} (indices const or runtime)
  DepthToSpace/SpaceToDepth -> Reshape + Transpose + Reshape (aliases around one copy)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from edgec.errors import ModelError
from edgec.importer.context import ConvertContext
from edgec.importer.registry import converter
from edgec.importer.validate import show, where


def _axis(node: onnx.NodeProto, axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ModelError(f"{where(node)}: axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _ints(data: np.ndarray | list | None) -> list[int]:
    return [] if data is None else [int(v) for v in np.asarray(data).ravel()]


def _check_shape(node: onnx.NodeProto, cx: ConvertContext, want: tuple[int, ...]) -> None:
    got = cx.shape(node.output[0])
    if tuple(got) != tuple(want):
        raise ModelError(f"{where(node)}: computed output shape {list(want)} but shape "
                         f"inference says {list(got)}")


@converter("Concat")
def convert_concat(cx: ConvertContext, node: onnx.NodeProto) -> None:
    ins = [i for i in node.input if i]
    rank = len(cx.shape(node.output[0]))
    axis = _axis(node, int(cx.attrs(node)["axis"]), rank)
    if len(ins) == 1:
        cx.emit("Reshape", ins, [node.output[0]], node.name)
        return
    cx.emit("Concat", ins, [node.output[0]], node.name, axis=axis)


@converter("Split")
def convert_split(cx: ConvertContext, node: onnx.NodeProto) -> None:
    a = cx.attrs(node)
    x = node.input[0]
    shape = cx.shape(x)
    axis = _axis(node, int(a.get("axis", 0)), len(shape))
    if cx.opset >= 13 and cx.input(node, 1):
        cx.require_const(node, 1, "split")
    outs = list(node.output)
    if any(not o for o in outs):
        raise ModelError(f"{where(node)}: unnamed outputs are not supported")
    # Shape inference already resolved split / num_outputs / equal split into output shapes.
    sizes = [cx.shape(o)[axis] for o in outs]
    if sum(sizes) != shape[axis]:
        raise ModelError(f"{where(node)}: pieces {sizes} do not add up to dim {shape[axis]}")
    if len(outs) == 1:
        cx.emit("Reshape", [x], outs, node.name)
        return
    cx.emit("Split", [x], outs, node.name, axis=axis)


@converter("Transpose")
def convert_transpose(cx: ConvertContext, node: onnx.NodeProto) -> None:
    rank = len(cx.shape(node.input[0]))
    perm = _ints(cx.attrs(node).get("perm")) or list(range(rank))[::-1]
    if sorted(perm) != list(range(rank)):
        raise ModelError(f"{where(node)}: perm {perm} is not a permutation of {rank} axes")
    if perm == sorted(perm):
        cx.emit("Reshape", [node.input[0]], [node.output[0]], node.name)
        return
    cx.emit("Transpose", [node.input[0]], [node.output[0]], node.name, perm=perm)


def normalize_slice(shape: tuple[int, ...], starts: list[int], ends: list[int], axes: list[int],
                    steps: list[int]) -> tuple[list[int], list[int], list[int]]:
    """Per-axis (start, step, length) with ONNX clamping rules."""
    rank = len(shape)
    st, sp, ln = [0] * rank, [1] * rank, list(shape)
    for b, e, ax, k in zip(starts, ends, axes, steps):
        n = shape[ax]
        b = b + n if b < 0 else b
        e = e + n if e < 0 else e
        if k > 0:
            b, e = min(max(b, 0), n), min(max(e, 0), n)
            length = max(0, -(-(e - b) // k))
        else:
            b, e = min(max(b, -1), n - 1), min(max(e, -1), n - 1)
            length = max(0, -(-(b - e) // -k))
        st[ax], sp[ax], ln[ax] = (b if length else 0), k, length
    return st, sp, ln


@converter("Slice")
def convert_slice(cx: ConvertContext, node: onnx.NodeProto) -> None:
    shape = cx.shape(node.input[0])
    rank = len(shape)
    if cx.opset < 10:
        a = cx.attrs(node)
        starts, ends = _ints(a["starts"]), _ints(a["ends"])
        axes = _ints(a.get("axes")) or list(range(len(starts)))
        steps = [1] * len(starts)
    else:
        starts = _ints(cx.require_const(node, 1, "starts"))
        ends = _ints(cx.require_const(node, 2, "ends"))
        axes = _ints(cx.require_const(node, 3, "axes")) if cx.input(node, 3) else \
            list(range(len(starts)))
        steps = _ints(cx.require_const(node, 4, "steps")) if cx.input(node, 4) else \
            [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ModelError(f"{where(node)}: starts/ends/axes/steps lengths differ")
    if 0 in steps:
        raise ModelError(f"{where(node)}: a step of 0 is invalid")
    axes = [_axis(node, ax, rank) for ax in axes]
    if len(set(axes)) != len(axes):
        raise ModelError(f"{where(node)}: repeated axes {axes}")
    st, sp, ln = normalize_slice(shape, starts, ends, axes, steps)
    _check_shape(node, cx, tuple(ln))
    if ln == list(shape) and all(k == 1 for k in sp):
        cx.emit("Reshape", [node.input[0]], [node.output[0]], node.name)
        return
    ends = [b + k * n for b, k, n in zip(st, sp, ln)]  # exclusive; -1 after a reverse to 0
    cx.emit("Slice", [node.input[0]], [node.output[0]], node.name, starts=st, ends=ends, steps=sp)


@converter("Gather")
def convert_gather(cx: ConvertContext, node: onnx.NodeProto) -> None:
    data, indices = node.input[0], node.input[1]
    shape = cx.shape(data)
    axis = _axis(node, int(cx.attrs(node).get("axis", 0)), len(shape))
    idx = cx.const(indices)
    if idx is not None:
        n = shape[axis]
        flat = np.asarray(idx, dtype=np.int64).ravel()
        bad = flat[(flat < -n) | (flat >= n)]
        if bad.size:
            raise ModelError(f"{where(node)}: index {int(bad[0])} is out of range for axis "
                             f"{axis} of size {n}")
    cx.emit("Gather", [data, indices], [node.output[0]], node.name, axis=axis)


@converter("GatherElements")
def convert_gather_elements(cx: ConvertContext, node: onnx.NodeProto) -> None:
    data, indices = node.input[0], node.input[1]
    shape, ishape = cx.shape(data), cx.shape(indices)
    axis = _axis(node, int(cx.attrs(node).get("axis", 0)), len(shape))
    if len(ishape) != len(shape) or any(i > d for k, (i, d) in enumerate(zip(ishape, shape)) if k != axis):
        raise ModelError(f"{where(node)}: indices of shape {list(ishape)} do not fit data of shape {list(shape)}")
    idx = cx.const(indices)
    if idx is not None:
        flat = np.asarray(idx, dtype=np.int64).ravel()
        bad = flat[(flat < -shape[axis]) | (flat >= shape[axis])]
        if bad.size:
            raise ModelError(f"{where(node)}: index {int(bad[0])} is out of range for axis {axis} "
                             f"of size {shape[axis]}")
    cx.emit("GatherElements", [data, indices], [node.output[0]], node.name, axis=axis)


_PAD_MODES = ("constant", "reflect", "edge", "wrap")


@converter("Pad")
def convert_pad(cx: ConvertContext, node: onnx.NodeProto) -> None:
    a = cx.attrs(node)
    x = node.input[0]
    shape = cx.shape(x)
    rank = len(shape)
    mode = a.get("mode", "constant")
    if mode not in _PAD_MODES or (mode == "wrap" and cx.opset < 19):
        raise ModelError(f"{where(node)}: pad mode {show(mode)} is not supported "
                         f"(supported: constant, reflect, edge, wrap from opset 19)")
    value: Any = 0
    if cx.opset < 11:
        raw = _ints(a.get("pads"))
        value = float(a.get("value", 0.0))
        axes = list(range(rank))
    else:
        raw = _ints(cx.require_const(node, 1, "pads"))
        runtime_value = cx.input(node, 2) if cx.input(node, 2) and cx.const(cx.input(node, 2)) is None else ""
        if cx.input(node, 2) and not runtime_value:
            cv = np.asarray(cx.require_const(node, 2, "constant_value")).ravel()
            value = cv[0].item() if cv.size else 0
        axes = [_axis(node, int(v), rank) for v in cx.require_const(node, 3, "axes").ravel()] \
            if cx.opset >= 18 and cx.input(node, 3) else list(range(rank))
    if len(raw) != 2 * len(axes):
        raise ModelError(f"{where(node)}: pads has {len(raw)} values, expected {2 * len(axes)}")
    pads = [0] * (2 * rank)
    for k, ax in enumerate(axes):
        pads[ax], pads[rank + ax] = raw[k], raw[len(axes) + k]
    out = []
    for d, n in enumerate(shape):
        m = n + pads[d] + pads[rank + d]
        if m < 0:
            raise ModelError(f"{where(node)}: pads {pads} crop axis {d} below zero")
        if mode != "constant" and n == 0 and m > 0:
            raise ModelError(f"{where(node)}: {mode} padding of an empty axis {d}")
        out.append(m)
    _check_shape(node, cx, tuple(out))
    dtype = cx.value(x).dtype
    value = bool(value) if dtype == np.bool_ else (
        float(value) if np.issubdtype(dtype, np.floating) else int(value))
    if not any(pads):
        cx.emit("Reshape", [x], [node.output[0]], node.name)
        return
    if cx.opset >= 11 and mode == "constant" and runtime_value:
        _pad_runtime_value(cx, node, pads, tuple(out), runtime_value)
        return
    cx.emit("Pad", [x], [node.output[0]], node.name, pads=pads, mode=mode, value=value)


def _pad_runtime_value(cx: ConvertContext, node: onnx.NodeProto, pads: list[int], out: tuple[int, ...],
                       value: str) -> None:
    """Pad with a value known only at run time: pad with 0, then Where(inside, padded, value)
    with `inside` a constant mask of the copied region."""
    x, y = node.input[0], node.output[0]
    dtype, rank = cx.value(x).dtype, len(out)
    if cx.value(value).size != 1:
        raise ModelError(f"{where(node)}: constant_value must be a scalar")
    zero = cx.temp(f"{y}_zero_padded", dtype, out)
    cx.emit("Pad", [x], [zero], node.name, pads=pads, mode="constant",
            value=False if dtype == np.bool_ else (0.0 if np.issubdtype(dtype, np.floating) else 0))
    inside = np.zeros(out, np.bool_)
    src = tuple(slice(max(pads[d], 0), max(pads[d], 0) + cx.shape(x)[d] + min(pads[d], 0) + min(pads[rank + d], 0))
                for d in range(rank))
    inside[src] = True
    if cx.shape(value) != ():
        scalar = cx.temp(f"{value}_scalar", cx.value(value).dtype, ())
        cx.emit("Reshape", [value], [scalar], node.name)
        value = scalar
    cx.emit("Where", [cx.add_const(f"{y}_inside", inside), zero, value], [y], node.name)


@converter("Expand")
def convert_expand(cx: ConvertContext, node: onnx.NodeProto) -> None:
    cx.require_const(node, 1, "shape")
    x, y = node.input[0], node.output[0]
    if tuple(cx.shape(x)) == tuple(cx.shape(y)):
        cx.emit("Reshape", [x], [y], node.name)
        return
    cx.emit("Expand", [x], [y], node.name)


@converter("Tile")
def convert_tile(cx: ConvertContext, node: onnx.NodeProto) -> None:
    reps = _ints(cx.require_const(node, 1, "repeats"))
    x, y = node.input[0], node.output[0]
    shape = cx.shape(x)
    if len(reps) != len(shape) or any(r < 0 for r in reps):
        raise ModelError(f"{where(node)}: repeats {reps} do not match rank {len(shape)}")
    _check_shape(node, cx, tuple(n * r for n, r in zip(shape, reps)))
    if all(r == 1 for r in reps):
        cx.emit("Reshape", [x], [y], node.name)
        return
    cx.emit("Tile", [x], [y], node.name, repeats=reps)


def _reshape_transpose_reshape(cx: ConvertContext, node: onnx.NodeProto, mid: list[int],
                               perm: list[int]) -> None:
    x, y = node.input[0], node.output[0]
    dtype = cx.value(x).dtype
    t1 = cx.temp(f"{y}_split", dtype, tuple(mid))
    t2 = cx.temp(f"{y}_perm", dtype, tuple(mid[p] for p in perm))
    cx.emit("Reshape", [x], [t1], node.name)
    cx.emit("Transpose", [t1], [t2], node.name, perm=perm)
    cx.emit("Reshape", [t2], [y], node.name)


@converter("DepthToSpace")
def convert_depth_to_space(cx: ConvertContext, node: onnx.NodeProto) -> None:
    a = cx.attrs(node)
    b = int(a["blocksize"])
    mode = a.get("mode", "DCR")
    shape = cx.shape(node.input[0])
    if len(shape) != 4 or b < 1 or shape[1] % (b * b):
        raise ModelError(f"{where(node)}: needs NCHW input with C divisible by blocksize^2")
    n, c, h, w = shape
    if mode == "DCR":
        mid, perm = [n, b, b, c // (b * b), h, w], [0, 3, 4, 1, 5, 2]
    elif mode == "CRD":
        mid, perm = [n, c // (b * b), b, b, h, w], [0, 1, 4, 2, 5, 3]
    else:
        raise ModelError(f"{where(node)}: mode {show(mode)} is not DCR or CRD")
    _check_shape(node, cx, (n, c // (b * b), h * b, w * b))
    _reshape_transpose_reshape(cx, node, mid, perm)


@converter("SpaceToDepth")
def convert_space_to_depth(cx: ConvertContext, node: onnx.NodeProto) -> None:
    b = int(cx.attrs(node)["blocksize"])
    shape = cx.shape(node.input[0])
    if len(shape) != 4 or b < 1 or shape[2] % b or shape[3] % b:
        raise ModelError(f"{where(node)}: needs NCHW input with H and W divisible by blocksize")
    n, c, h, w = shape
    mode = cx.attrs(node).get("mode", "DCR")  # the attribute exists from opset 25 on
    perms = {"DCR": [0, 3, 5, 1, 2, 4], "CRD": [0, 1, 3, 5, 2, 4]}
    if mode not in perms:
        raise ModelError(f"{where(node)}: mode {show(mode)} is not DCR or CRD")
    _check_shape(node, cx, (n, c * b * b, h // b, w // b))
    _reshape_transpose_reshape(cx, node, [n, c, h // b, b, w // b, b], perms[mode])

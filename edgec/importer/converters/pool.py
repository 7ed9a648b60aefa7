"""MaxPool, AveragePool and the global pools -> IR pools with explicit 2-D attributes.

ceil_mode only changes the output size, which the IR carries in the output value's shape; the
kernel clips every window at the padded input edge, so nothing else needs to know about it.
"""

from __future__ import annotations

import numpy as np
import onnx

from edgec.errors import ModelError
from edgec.importer.context import ConvertContext
from edgec.importer.converters.conv import (
    auto_pad,
    check_dtype,
    check_out_shape,
    forward_pads,
    ints,
    pads_2d,
    spatial_rank,
    to_2d,
    where,
)
from edgec.importer.registry import converter

POOL_DTYPES = {"MaxPool": ("float32", "float64", "int8", "uint8"), "AveragePool": ("float32",)}


def pool_out_size(size: int, k_eff: int, stride: int, head: int, tail: int, ceil: bool) -> int:
    """onnxruntime's rule: with ceil_mode, a last window that would start past the end of the
    input plus the begin padding is dropped (as in PyTorch)."""
    span = size + head + tail - k_eff
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + head:
        out -= 1
    return out


@converter("MaxPool", "AveragePool")
def convert_pool(cx: ConvertContext, node: onnx.NodeProto) -> None:
    nsp = 3 if len(cx.shape(node.input[0])) == 5 else spatial_rank(cx, node)
    check_dtype(cx, node, POOL_DTYPES[node.op_type])
    indices = node.op_type == "MaxPool" and len(node.output) > 1 and bool(node.output[1])
    if indices and nsp == 3:
        raise ModelError(f"{where(node)}: the Indices output of a 3-D MaxPool is not supported")
    a = cx.attrs(node)
    if "kernel_shape" not in a:
        raise ModelError(f"{where(node)}: kernel_shape is required")
    kernel = ints(a, "kernel_shape", [], nsp, node)
    strides = ints(a, "strides", [1] * nsp, nsp, node)
    dils = ints(a, "dilations", [1] * nsp, nsp, node)
    if min(kernel) < 1 or min(strides) < 1 or min(dils) < 1:
        raise ModelError(f"{where(node)}: kernel_shape, strides and dilations must be positive")
    k_eff = [(k - 1) * d + 1 for k, d in zip(kernel, dils)]
    sizes = list(cx.shape(node.input[0])[2:])
    pads = forward_pads(auto_pad(a, node), a, sizes, k_eff, strides, node)
    ceil = bool(int(a.get("ceil_mode", 0)))
    out = [pool_out_size(s, k, st, pads[i], pads[i + nsp], ceil)
           for i, (s, k, st) in enumerate(zip(sizes, k_eff, strides))]
    if min(out) < 1:
        raise ModelError(f"{where(node)}: the window {kernel} (dilated {k_eff}) is larger than the "
                         f"padded input {sizes}; expected an output of at least 1 pixel")
    check_out_shape(cx, node, out, " (with ceil_mode, a window that would start in the end "
                    "padding is dropped)" if ceil else "")
    include = {"count_include_pad": int(a.get("count_include_pad", 0))} if node.op_type == "AveragePool" else {}
    if nsp == 3:
        _pool_3d(cx, node, kernel, strides, dils, pads, out, include)
        return
    attrs = dict(kernel=to_2d(kernel, 1), strides=to_2d(strides, 1), pads=pads_2d(pads),
                 dilations=to_2d(dils, 1))
    if indices:
        order = int(a.get("storage_order", 0))
        if order not in (0, 1):
            raise ModelError(f"{where(node)}: storage_order {order}: expected 0 or 1")
        cx.emit("MaxPoolIndices", [node.input[0]], list(node.output[:2]), node.name, **attrs, storage_order=order)
        return
    cx.emit(node.op_type, [node.input[0]], [node.output[0]], node.name, **attrs, **include)


def _pool_3d(cx: ConvertContext, node: onnx.NodeProto, kernel: list[int], strides: list[int],
             dils: list[int], pads: list[int], out: list[int], include: dict) -> None:
    """A 3-D pool is separable: a 2-D pool over (H, W) of every depth slice, then a pool over D
    (as a 2-D pool of kernel (KD, 1) over (D, OH*OW)). Max of maxes is the max; for the
    average, AveragePool's divisor is a product of per-axis counts, so the mean of the per-slice
    means is the mean."""
    x, y = node.input[0], node.output[0]
    n, c, d, h, w = cx.shape(x)
    od, oh, ow = out
    dt = cx.value(x).dtype
    slices = cx.temp(f"{x}_slices", dt, (n, c * d, h, w))
    cx.emit("Reshape", [x], [slices], node.name)
    hw = cx.temp(f"{y}_hw", dt, (n, c * d, oh, ow))
    cx.emit(node.op_type, [slices], [hw], node.name, kernel=kernel[1:], strides=strides[1:],
            pads=[pads[1], pads[2], pads[4], pads[5]], dilations=dils[1:], **include)
    cols = cx.temp(f"{y}_cols", dt, (n, c, d, oh * ow))
    cx.emit("Reshape", [hw], [cols], node.name)
    deep = cx.temp(f"{y}_deep", dt, (n, c, od, oh * ow))
    cx.emit(node.op_type, [cols], [deep], node.name, kernel=[kernel[0], 1], strides=[strides[0], 1],
            pads=[pads[0], 0, pads[3], 0], dilations=[dils[0], 1], **include)
    cx.emit("Reshape", [deep], [y], node.name)


@converter("GlobalAveragePool", "GlobalMaxPool")
def convert_global_pool(cx: ConvertContext, node: onnx.NodeProto) -> None:
    """A pool whose window is the whole (flattened) spatial extent. Rank-3/4 inputs are pooled
    directly; higher ranks are viewed as (N, C, 1, D*H*W) through Reshape aliases."""
    op = "AveragePool" if node.op_type == "GlobalAveragePool" else "MaxPool"
    check_dtype(cx, node, POOL_DTYPES[op])
    x, y = node.input[0], node.output[0]
    xv = cx.value(x)
    if len(xv.shape) < 3:
        raise ModelError(f"{where(node)}: input rank {len(xv.shape)} has no spatial axes")
    n, c = xv.shape[:2]
    spatial = [int(d) for d in xv.shape[2:]]
    attrs = dict(strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1])
    if op == "AveragePool":
        attrs["count_include_pad"] = 0
    if len(spatial) <= 2:
        cx.emit(op, [x], [y], node.name, kernel=to_2d(spatial, 1), **attrs)
        return
    size = int(np.prod(spatial))
    flat = cx.temp(f"{x}_flat", xv.dtype, (n, c, 1, size))
    pooled = cx.temp(f"{y}_pooled", xv.dtype, (n, c, 1, 1))
    cx.emit("Reshape", [x], [flat], node.name)
    cx.emit(op, [flat], [pooled], node.name, kernel=[1, size], **attrs)
    cx.emit("Reshape", [pooled], [y], node.name)

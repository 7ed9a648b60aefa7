"""LRN (local response normalization across channels) from ops edgec already compiles:

  y = x / (bias + alpha / size * sum_{c' in window(c)} x[c']^2) ^ beta

The window sum over channels is an AveragePool of x^2 over a (N, 1, C, H*W) view with a
(size, 1) kernel, padded by floor((size-1)/2) before and ceil((size-1)/2) after and counting
the padding (so the divisor is always `size`): alpha * avg = alpha / size * sum.
"""

from __future__ import annotations

import numpy as np
import onnx

from edgec.errors import ModelError
from edgec.importer.context import ConvertContext
from edgec.importer.registry import converter
from edgec.importer.validate import where


@converter("LRN")
def convert_lrn(cx: ConvertContext, node: onnx.NodeProto) -> None:
    a = cx.attrs(node)
    x, y = node.input[0], node.output[0]
    shape = cx.shape(x)
    if len(shape) < 3 or np.dtype(cx.value(x).dtype) != np.float32:
        raise ModelError(f"{where(node)}: LRN needs a float32 input of rank 3 or more")
    if "size" not in a or int(a["size"]) < 1:
        raise ModelError(f"{where(node)}: LRN needs a positive size")
    size = int(a["size"])
    alpha, beta, bias = float(a.get("alpha", 1e-4)), float(a.get("beta", 0.75)), float(a.get("bias", 1.0))
    n, c = shape[:2]
    rest = int(np.prod(shape[2:]))
    dt = np.float32
    sq = cx.temp(f"{y}_sq", dt, shape)
    cx.emit("Mul", [x, x], [sq], node.name)
    view = cx.temp(f"{y}_sq_view", dt, (n, 1, c, rest))
    cx.emit("Reshape", [sq], [view], node.name)
    avg = cx.temp(f"{y}_avg", dt, (n, 1, c, rest))
    cx.emit("AveragePool", [view], [avg], node.name, kernel=[size, 1], strides=[1, 1],
            pads=[(size - 1) // 2, 0, size // 2, 0], dilations=[1, 1], count_include_pad=1)
    avg_x = cx.temp(f"{y}_avg_x", dt, shape)
    cx.emit("Reshape", [avg], [avg_x], node.name)
    scaled = cx.temp(f"{y}_scaled", dt, shape)
    cx.emit("Mul", [avg_x, cx.add_const(f"{y}_alpha", np.array(alpha, dt))], [scaled], node.name)
    base = cx.temp(f"{y}_base", dt, shape)
    cx.emit("Add", [scaled, cx.add_const(f"{y}_bias", np.array(bias, dt))], [base], node.name)
    denom = cx.temp(f"{y}_denom", dt, shape)
    cx.emit("Pow", [base, cx.add_const(f"{y}_beta", np.array(beta, dt))], [denom], node.name)
    cx.emit("Div", [x, denom], [y], node.name)

"""TopK: the k largest (or smallest) values along an axis and their int64 indices, sorted,
ties in index order (as onnxruntime). K is the `k` attribute (opset 1) or a constant input."""

from __future__ import annotations

import numpy as np
import onnx

from edgec.errors import ModelError
from edgec.importer.context import ConvertContext
from edgec.importer.registry import converter
from edgec.importer.validate import where


@converter("TopK")
def convert_topk(cx: ConvertContext, node: onnx.NodeProto) -> None:
    a = cx.attrs(node)
    x = node.input[0]
    shape = cx.shape(x)
    if not shape:
        raise ModelError(f"{where(node)}: TopK needs an input of rank 1 or more")
    axis = int(a.get("axis", -1))
    if not -len(shape) <= axis < len(shape):
        raise ModelError(f"{where(node)}: axis {axis} is out of range for rank {len(shape)}")
    axis %= len(shape)
    if cx.opset < 10:
        k = int(a.get("k", -1))
    else:
        kv = np.asarray(cx.require_const(node, 1, "K")).ravel()
        if kv.size != 1:
            raise ModelError(f"{where(node)}: K must hold one value")
        k = int(kv[0])
    if not 0 <= k <= shape[axis]:
        raise ModelError(f"{where(node)}: K = {k} is outside [0, {shape[axis]}] for axis {axis}")
    outs = list(node.output) + [""] * (2 - len(node.output))
    out_shape = tuple(k if d == axis else n for d, n in enumerate(shape))
    values = outs[0] or cx.temp(f"{node.name or 'topk'}_values", cx.value(x).dtype, out_shape)
    indices = outs[1] or cx.temp(f"{node.name or 'topk'}_indices", np.int64, out_shape)
    cx.emit("TopK", [x], [values, indices], node.name, axis=axis, k=k,
            largest=bool(int(a.get("largest", 1))))

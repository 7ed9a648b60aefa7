"""Make an exported float model quantizable: older opsets are upgraded to 13 (per-channel
DequantizeLinear), and `Constant` nodes become initializers (paddle2onnx and older exporters
store every weight as a Constant node; the QDQ writer must see them as constant weights, not
as activations to calibrate)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from edgec.errors import ModelError

QDQ_OPSET = 13


def opset_of(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def upgrade_opset(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` itself when its opset is >= 13, else a copy converted to opset 13."""
    opset = opset_of(model)
    if opset >= QDQ_OPSET:
        return model
    try:
        m = onnx.version_converter.convert_version(model, QDQ_OPSET)
    except Exception as exc:  # noqa: BLE001 - the converter raises several error types
        raise ModelError(f"quantization needs ONNX opset >= {QDQ_OPSET}; converting the model from "
                         f"opset {opset} failed: {str(exc).splitlines()[0]}") from None
    return m


def constants_to_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` where every `Constant` node with a tensor value (`value`, or a
    `value_float(s)` / `value_int(s)` scalar or list) is an initializer of the same name."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    kept, inits = [], []
    for n in g.node:
        attrs = {a.name: a for a in n.attribute}
        if n.op_type != "Constant" or n.domain not in ("", "ai.onnx") or len(attrs) != 1 or (
                "sparse_value" in attrs or "value_string" in attrs or "value_strings" in attrs):
            kept.append(n)
            continue
        t = onnx.TensorProto()
        t.CopyFrom(_value(n))
        t.name = n.output[0]
        inits.append(t)
    del g.node[:]
    g.node.extend(kept)
    g.initializer.extend(inits)
    return m


def _value(n: onnx.NodeProto) -> onnx.TensorProto:
    a = n.attribute[0]
    if a.name == "value":
        return a.t
    v = onnx.helper.get_attribute_value(a)
    dtype = np.float32 if a.name.startswith("value_float") else np.int64
    return numpy_helper.from_array(np.array(v, dtype))

"""Load, check and convert an ONNX model into the IR.

Order matters for the user: (1) the file is readable ONNX, (2) every input shape is static,
(3) constants are folded, (4) *all* unsupported ops are listed at once, (5) conversion.
Nothing is compiled before these checks pass.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, shape_inference

from edgec.errors import ModelError, UnsupportedOpsError
from edgec.importer.context import ConvertContext
from edgec.importer.fold import _static_shape, fold_constants
from edgec.importer.registry import CONVERTERS, supported_ops
from edgec.ir.graph import Graph, Value

# Opsets 7-21 are the tested range. Newer opsets are accepted: from 22 on, ONNX mostly added
# element types (bfloat16, float8, int4) to existing ops; a dtype we cannot compile is reported
# when its kernel is generated.
MIN_OPSET, TESTED_MAX_OPSET = 7, 21
MAX_OPSET = max(TESTED_MAX_OPSET, onnx.defs.onnx_opset_version())


def load_onnx(model: onnx.ModelProto | str | os.PathLike) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    path = Path(model)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        proto = onnx.load(str(path))
    except (DecodeError, ValueError, RuntimeError, OSError) as exc:
        raise ModelError(f"{path} is not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    if not proto.graph.node and not proto.graph.output:
        raise ModelError(f"{path} is not an ONNX model (no graph found)")
    return proto


def _opset(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    return MAX_OPSET


def _fix_input_shapes(model: onnx.ModelProto, input_shapes: dict[str, list[int]]) -> None:
    inits = {i.name for i in model.graph.initializer}
    real = [i for i in model.graph.input if i.name not in inits]
    names = [i.name for i in real]
    unknown = sorted(set(input_shapes) - set(names))
    if unknown:
        raise ModelError(f"--input-shape names unknown input(s) {unknown}; the model's inputs are {names}")
    dynamic = []
    for vi in real:
        tt = vi.type.tensor_type
        if vi.name in input_shapes:
            want = [int(d) for d in input_shapes[vi.name]]
            if tt.HasField("shape") and len(tt.shape.dim) not in (0, len(want)):
                raise ModelError(f"--input-shape {vi.name}: rank {len(want)} but the model says "
                                 f"rank {len(tt.shape.dim)}")
            tt.shape.Clear()
            for d in want:
                tt.shape.dim.add().dim_value = d
            continue
        if not tt.HasField("shape"):
            dynamic.append(f"{vi.name} (no shape)")
            continue
        dims = [d.dim_param or ("?" if not d.HasField("dim_value") else str(d.dim_value)) for d in tt.shape.dim]
        if any(not d.HasField("dim_value") for d in tt.shape.dim):
            dynamic.append(f"{vi.name} [{', '.join(dims)}]")
    if dynamic:
        raise ModelError("dynamic input dims in " + "; ".join(dynamic)
                         + ": fix them with --input-shape NAME=D0,D1,...")


def _clear_negative_dims(model: onnx.ModelProto) -> None:
    """Exporters (paddle2onnx) write -1 for a dynamic dim; ONNX means "unknown" by an unset dim,
    and shape inference rejects -1 once the real size is known, so unset them."""
    g = model.graph
    for vi in list(g.output) + list(g.value_info):
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and d.dim_value < 0:
                d.Clear()


def _infer(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except Exception as exc:  # noqa: BLE001 - onnx raises several error types here
        raise ModelError(f"shape inference failed: {exc}".splitlines()[0]) from None


def _value_infos(model: onnx.ModelProto) -> dict[str, onnx.ValueInfoProto]:
    g = model.graph
    return {vi.name: vi for vi in list(g.input) + list(g.value_info) + list(g.output)}


def import_model(model: onnx.ModelProto | str | os.PathLike,
                 input_shapes: dict[str, list[int]] | None = None) -> Graph:
    from edgec.importer import converters  # noqa: F401  (fills CONVERTERS)

    proto = onnx.ModelProto()
    proto.CopyFrom(load_onnx(model))
    opset = _opset(proto)
    if opset < MIN_OPSET or opset > MAX_OPSET:
        raise ModelError(f"ONNX opset {opset} is outside the supported range {MIN_OPSET}-{MAX_OPSET}")
    if proto.functions:
        proto = onnx.inliner.inline_local_functions(proto)
    _fix_input_shapes(proto, input_shapes or {})
    _clear_negative_dims(proto)
    proto = _infer(proto)
    try:  # after inference, which fills output shapes that exporters sometimes omit
        onnx.checker.check_model(proto)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"invalid ONNX model: {str(exc).splitlines()[0]}") from None

    # Fold, re-infer shapes on the folded graph, and fold again until nothing changes: a Shape
    # node may only become static once an earlier folded value fixed its input's shape.
    g = proto.graph
    inits = {i.name for i in g.initializer}
    real_inputs = [i for i in g.input if i.name not in inits]
    supported = set(supported_ops())
    current, infos = proto, _value_infos(proto)
    while True:
        kept, consts = fold_constants(current, infos, supported)
        used = {i for n in kept for i in n.input} | {o.name for o in g.output}
        folded = helper.make_graph(
            kept, g.name or "model", real_inputs, list(g.output),
            initializer=[onnx.numpy_helper.from_array(v, k) for k, v in consts.items() if k in used])
        folded_model = helper.make_model(folded, opset_imports=proto.opset_import, ir_version=proto.ir_version)
        infos = _value_infos(_infer(folded_model))
        if len(kept) == len(current.graph.node):
            break
        current = folded_model

    unsupported: dict[str, list[str]] = {}
    for node in kept:
        if node.domain not in ("", "ai.onnx") or node.op_type not in CONVERTERS:
            op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
            unsupported.setdefault(op, []).append(node.name or node.output[0])
    if unsupported:
        raise UnsupportedOpsError(unsupported)

    graph = Graph(name=_c_identifier(g.name or "model"), values={}, nodes=[],
                  inputs=[i.name for i in real_inputs], outputs=[o.name for o in g.output])
    for name, arr in consts.items():
        if name in used:
            arr = np.asarray(arr, order="C")
            graph.values[name] = Value(name, arr.dtype, tuple(arr.shape), arr)
    missing = []
    for name, vi in infos.items():
        if name in graph.values:
            continue
        shape = _static_shape(vi)
        if shape is None:
            missing.append(name)
            continue
        dtype = helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
        graph.values[name] = Value(name, np.dtype(dtype), shape)
    for node in kept:
        for o in node.output:
            if o and o not in graph.values:
                missing.append(o)
    if missing:
        raise ModelError(f"could not infer a static shape for {sorted(set(missing))[:5]}; "
                         "fix dynamic inputs with --input-shape")

    cx = ConvertContext(graph, opset)
    for node in kept:
        CONVERTERS[node.op_type](cx, node)
    return graph


def _c_identifier(name: str) -> str:
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return out if out and not out[0].isdigit() else f"m_{out}"

"""Load, check and convert an ONNX model into the IR.

Order matters for the user: (1) the file is readable ONNX, (2) every input shape is static,
(3) constants are folded, (4) *all* unsupported ops are listed at once, (5) conversion.
Nothing is compiled before these checks pass. The model is hostile data until checked:
validate.py (headers, tensors, structure, sizes), external_data.py (file and external data),
functions.py (local functions) and operands.py (constant operands) refuse malformed models
with a ModelError before anything trusts them.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import helper

from edgec.errors import ModelError, UnsupportedOpsError
from edgec.importer.bind import bind_inputs, check_bound
from edgec.importer.context import ConvertContext
from edgec.importer.contrib import (
    drop_edgec_properties,
    expand_contrib_ops,
    quantized_state_outputs,
)
from edgec.importer.control_flow import check_branch_shapes, inline_runtime_ifs, is_if
from edgec.importer.external_data import load_external_data, model_path, read_model_file
from edgec.importer.fold import _static_shape, fold_constants
from edgec.importer.functions import inline_functions
from edgec.importer.operands import check_finite_weights, check_graph_operands
from edgec.importer.registry import CONVERTERS, supported_ops
from edgec.importer.sandbox import isolated
from edgec.importer.shape_infer import DeclaredShapes
from edgec.importer.validate import (
    check_graph,
    check_header,
    check_input_shapes,
    check_ir_values,
    check_tensors,
    check_value_infos,
    clean_message,
    node_name,
    show,
    where,
)
from edgec.ir.graph import Graph, Value

# Opsets 7-21 are the tested range. Newer opsets are accepted: from 22 on, ONNX mostly added
# element types (bfloat16, float8, int4) to existing ops; a dtype we cannot compile is reported
# when its kernel is generated.
MIN_OPSET, TESTED_MAX_OPSET = 7, 21
MAX_OPSET = max(TESTED_MAX_OPSET, onnx.defs.onnx_opset_version())


def load_onnx(model: onnx.ModelProto | str | os.PathLike) -> onnx.ModelProto:
    """The model, its external data loaded and checked, its header and tensors validated.
    A ModelProto is returned as is (not copied); it must not refer to external data."""
    if isinstance(model, onnx.ModelProto):
        proto, what = model, "the model"
        load_external_data(proto, None)  # only raises: no directory to read from
    else:
        path = model_path(model)
        proto, what = read_model_file(path), show(str(path))
    if not proto.graph.node and not proto.graph.output:
        raise ModelError(f"{what} is not an ONNX model (no graph found)")
    check_header(proto)
    check_tensors(proto)
    check_graph(proto.graph)
    return proto


def _upgrade(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """An opset 1-6 model converted to opset 7 by onnx's version converter (in the sandbox: it
    is C++ fed with hostile data), so the converters see one set of op definitions (opset 7
    dropped the old `broadcast`/`axis` attributes of the arithmetic ops, and BatchNormalization's
    `spatial`/`is_test`)."""
    from onnx import version_converter

    try:
        out = isolated(lambda m: version_converter.convert_version(m, MIN_OPSET), model,
                       "the ONNX version converter")
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - onnx raises several error types here
        raise ModelError(f"cannot convert the opset {opset} model to opset {MIN_OPSET}: "
                         f"{clean_message(exc, 160)}") from None
    assert out is not None
    return out


def _opset(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    if any(n.domain in ("", "ai.onnx") for n in model.graph.node):
        raise ModelError("the model has ONNX operators but no opset import for the ONNX domain; "
                         "expected an opset_import entry with domain ''")
    return MAX_OPSET


def _fix_input_shapes(model: onnx.ModelProto, input_shapes: dict[str, list[int]]) -> None:
    inits = {i.name for i in model.graph.initializer}
    real = [i for i in model.graph.input if i.name not in inits]
    names = [i.name for i in real]
    unknown = sorted(set(input_shapes) - set(names))
    if unknown:
        raise ModelError(f"--input-shape names unknown input(s) "
                         f"{', '.join(map(show, unknown[:5]))}; the model's inputs are "
                         f"{', '.join(map(show, names[:10]))}")
    dynamic = []
    for vi in real:
        tt = vi.type.tensor_type
        if vi.name in input_shapes:
            want = [int(d) for d in input_shapes[vi.name]]
            if tt.HasField("shape") and len(tt.shape.dim) not in (0, len(want)):
                raise ModelError(f"--input-shape {show(vi.name)}: rank {len(want)} but the model "
                                 f"says rank {len(tt.shape.dim)}")
            tt.shape.Clear()
            for d in want:
                tt.shape.dim.add().dim_value = d
            continue
        if not tt.HasField("shape"):
            dynamic.append(f"{show(vi.name)} (no shape)")
            continue
        # A negative dim is how some exporters (paddle2onnx) spell "dynamic".
        static = [d.HasField("dim_value") and d.dim_value >= 0 for d in tt.shape.dim]
        if not all(static):
            dims = [str(d.dim_value) if ok else show(d.dim_param or "?")
                    for d, ok in zip(tt.shape.dim, static)]
            dynamic.append(f"{show(vi.name)} [{', '.join(dims[:8])}]")
    if dynamic:
        raise ModelError("dynamic input dims in " + "; ".join(dynamic[:5])
                         + ": fix them with --input-shape NAME=D0,D1,...")


def _clear_negative_dims(model: onnx.ModelProto) -> None:
    """Exporters (paddle2onnx) write -1 for a dynamic dim; ONNX means "unknown" by an unset dim,
    and shape inference rejects -1 once the real size is known, so unset them."""
    g = model.graph
    for vi in list(g.output) + list(g.value_info):
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and d.dim_value < 0:
                d.Clear()


def _runtime_if_error(ifs: list[onnx.NodeProto], producer: dict[str, onnx.NodeProto],
                      graph_inputs: set[str], exc: ModelError) -> ModelError:
    """Both branches of an If whose condition is known only at run time must fit the shapes:
    when one does not, the condition most likely depends on an input that is fixed in practice
    (a sample rate, a mode flag): name the inputs to bind."""
    inputs: set[str] = set()
    seen: set[str] = set()
    stack = [n.input[0] for n in ifs if n.input]
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        if v in producer:
            stack += [i for i in producer[v].input if i]
        elif v in graph_inputs:
            inputs.add(v)
    return ModelError(f"{where(ifs[0])}: its condition is known only at run time (it depends on "
                      f"{', '.join(map(show, sorted(inputs)))}), so both branches are compiled, and a branch does "
                      f"not fit the input shapes ({clean_message(exc, 200)}); freeze the inputs that decide it with "
                      "--bind NAME=VALUE")


def _subgraph_refs(nodes: list[onnx.NodeProto]) -> set[str]:
    """Names that the branches of (not yet inlined) Ifs read from the enclosing graph."""
    out: set[str] = set()

    def walk(g: onnx.GraphProto) -> None:
        for n in g.node:
            out.update(n.input)
            for a in n.attribute:
                for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                    walk(sub)
        out.update(o.name for o in g.output)

    for n in nodes:
        for a in n.attribute:
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                walk(sub)
    return out


def _value_infos(model: onnx.ModelProto) -> dict[str, onnx.ValueInfoProto]:
    g = model.graph
    return {vi.name: vi for vi in list(g.input) + list(g.value_info) + list(g.output)}


def _check_names_are_text(model: onnx.ModelProto) -> None:
    """protobuf hands back a name that is not UTF-8 as bytes; every later step assumes str."""
    g = model.graph
    names = [g.name, *(t.name for t in g.initializer), *(v.name for v in (*g.input, *g.output, *g.value_info))]
    for n in g.node:
        names += [n.name, n.op_type, n.domain, *n.input, *n.output]
    for f in model.functions:
        names += [f.name, f.domain, *f.input, *f.output]
    bad = next((x for x in names if not isinstance(x, str)), None)
    if bad is not None:
        raise ModelError(f"the model holds a name that is not valid UTF-8: {show(bad)}")


def import_model(model: onnx.ModelProto | str | os.PathLike,
                 input_shapes: dict[str, list[int]] | None = None,
                 bind: dict[str, object] | None = None) -> Graph:
    """The IR of `model`. `input_shapes` fixes dynamic input dims; `bind` freezes graph inputs
    that decide shapes to constants (edgec/importer/bind.py)."""
    from edgec.importer import converters  # noqa: F401  (fills CONVERTERS)

    shapes = check_input_shapes(input_shapes)
    proto = onnx.ModelProto()
    proto.CopyFrom(load_onnx(model))
    opset = _opset(proto)
    if opset < 1 or opset > MAX_OPSET:
        raise ModelError(f"ONNX opset {opset} is outside the supported range 1-{MAX_OPSET}")
    _check_names_are_text(proto)
    if opset < MIN_OPSET:
        proto, opset = _upgrade(proto, opset), MIN_OPSET
    proto = inline_functions(proto)
    drop_edgec_properties(proto)
    proto = expand_contrib_ops(proto, opset)  # com.microsoft ops -> standard ONNX (contrib/)
    quantized_state = quantized_state_outputs(proto)
    check_graph(proto.graph)  # again after inlining: a function body may break it
    bind_inputs(proto, bind)
    check_bound(proto)
    check_graph_operands(proto.graph, opset)
    _fix_input_shapes(proto, shapes)
    _clear_negative_dims(proto)
    declared = DeclaredShapes()
    proto = declared.infer(proto)
    check_value_infos(_value_infos(proto).values())

    # Fold, re-infer shapes on the folded graph, and fold again until nothing changes: a Shape
    # node may only become static once an earlier folded value fixed its input's shape, and an
    # If is inlined once its condition folds. Ifs left then run both branches (control_flow.py)
    # and folding goes on in what they brought in.
    g = proto.graph
    inits = {i.name for i in g.initializer}
    real_inputs = [i for i in g.input if i.name not in inits]
    supported = set(supported_ops())
    current, infos = proto, _value_infos(proto)
    if_pairs: list = []
    runtime_ifs: list[onnx.NodeProto] = []  # inlined with both branches
    producers: dict[str, onnx.NodeProto] = {}
    while True:
        kept, consts, changed = fold_constants(current, infos, supported)
        used = {i for n in kept for i in n.input} | {o.name for o in g.output} | _subgraph_refs(kept)
        folded = helper.make_graph(
            kept, g.name or "model", real_inputs, list(g.output),
            initializer=[onnx.numpy_helper.from_array(v, k) for k, v in consts.items() if k in used])
        folded_model = helper.make_model(folded, opset_imports=proto.opset_import, ir_version=proto.ir_version)
        if not changed:
            if not any(map(is_if, kept)):
                infos = _value_infos(declared.infer(folded_model))
                break
            runtime_ifs += [n for n in kept if is_if(n)]
            if_pairs += inline_runtime_ifs(folded_model.graph)  # only run-time conditions are left
            check_graph(folded_model.graph)
        try:
            infos = _value_infos(declared.infer(folded_model))
        except ModelError as exc:
            raise (_runtime_if_error(runtime_ifs, producers, {i.name for i in real_inputs}, exc)
                   if runtime_ifs else exc) from None
        producers.update({o: n for n in kept for o in n.output if o})
        check_value_infos(infos.values())
        check_branch_shapes(if_pairs, infos)
        current = folded_model
    check_value_infos(infos.values())

    unsupported: dict[str, list[str]] = {}
    for node in kept:
        if node.domain not in ("", "ai.onnx") or node.op_type not in CONVERTERS:
            op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
            op = op if isinstance(op, str) and op.replace(".", "_").isidentifier() and len(op) <= 64 else show(op)
            unsupported.setdefault(op, []).append(node_name(node))
    if unsupported:
        raise UnsupportedOpsError(unsupported)
    check_finite_weights(kept, consts)

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
        dtype = helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)  # checked above
        graph.values[name] = Value(name, np.dtype(dtype), shape)
    for node in kept:
        for o in node.output:
            if o and o not in graph.values:
                missing.append(o)
    if missing:
        names = ", ".join(map(show, sorted(set(missing))[:5]))
        raise ModelError(f"could not infer a static shape for {names}; "
                         "fix dynamic inputs with --input-shape, and freeze graph inputs that decide "
                         "shapes with --bind NAME=V1,V2,...")
    check_ir_values(graph.values)

    cx = ConvertContext(graph, opset)
    cx.quantized_state = quantized_state
    for node in kept:
        _convert(cx, node)
    check_ir_values(graph.values)  # and the temporaries converters added
    return graph


def _convert(cx: ConvertContext, node: onnx.NodeProto) -> None:
    """One converter call. Converters check what they rely on; a malformed node they did not
    foresee (numpy refusing a shape, a missing optional input) still ends as a ModelError
    naming the node, unless EDGEC_DEBUG asks for the traceback."""
    try:
        CONVERTERS[node.op_type](cx, node)
    except ModelError:
        raise
    except (ValueError, IndexError, KeyError, TypeError, OverflowError, ZeroDivisionError,
            AttributeError) as exc:
        if os.environ.get("EDGEC_DEBUG"):
            raise
        raise ModelError(f"{where(node)} cannot be converted ({type(exc).__name__}: "
                         f"{clean_message(exc, 160)}); the node is malformed, or this is an edgec "
                         "bug (EDGEC_DEBUG=1 shows the traceback)") from exc


def _c_identifier(name: str) -> str:
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return out if out and not out[0].isdigit() else f"m_{out}"

"""onnxruntime's `com.microsoft` ops, as exporters and onnxruntime's own tools write them into
plain models, rewritten into standard ONNX before shape inference (which does not know them:
their outputs would have no shape, and everything downstream would look dynamic).

Each op is one small rewrite (`@expands("Gelu")` in a module of this package) that returns
standard nodes computing what onnxruntime computes; quantized ops become DequantizeLinear ->
float op -> QuantizeLinear, the QDQ form that edgec's quantized passes already turn into integer
kernels (edgec/quantize). The rewrite runs before validation of operands and folding, so every
check downstream sees only standard ops. docs/contrib_ops.md lists the ops and their numerics.
"""

from __future__ import annotations

import onnx

from edgec.importer.contrib.rewrite import (
    DOMAIN,
    EXPANSIONS,
    QUANTIZED_STATE_KEY,
    Rewrite,
    check_required,
)


def expand_contrib_ops(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """`model` with every com.microsoft op that has a rewrite replaced by standard nodes (in
    place, main graph and If branches); ops without one are left for the unsupported-op list."""
    from edgec.importer.contrib import activations, dynamic, qlinear  # noqa: F401 (fill EXPANSIONS)

    if not any(n.domain == DOMAIN for n in _all_nodes(model.graph)):
        return model
    marked: list[str] = []
    _expand_graph(model.graph, model.graph, opset, marked, _ranks(model))
    if marked:
        model.metadata_props.add(key=QUANTIZED_STATE_KEY, value="\n".join(marked))
    return model


def quantized_state_outputs(model: onnx.ModelProto) -> set[str]:
    return {o for p in model.metadata_props if p.key == QUANTIZED_STATE_KEY for o in p.value.split("\n") if o}


def drop_edgec_properties(model: onnx.ModelProto) -> None:
    keep = [p for p in model.metadata_props if p.key != QUANTIZED_STATE_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)


def _all_nodes(g: onnx.GraphProto) -> list[onnx.NodeProto]:
    out = []
    for n in g.node:
        out.append(n)
        for a in n.attribute:
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                out += _all_nodes(sub)
    return out


def _ranks(model: onnx.ModelProto) -> dict[str, int]:
    """Ranks known before the rewrite (non-strict inference: com.microsoft outputs stay unknown)."""
    try:
        g = onnx.shape_inference.infer_shapes(model).graph
    except Exception:  # noqa: BLE001 - a malformed model is refused later with a clear message
        g = model.graph
    return {v.name: len(v.type.tensor_type.shape.dim) for v in [*g.input, *g.value_info, *g.output]
            if v.type.HasField("tensor_type") and v.type.tensor_type.HasField("shape")}


def _expand_graph(g: onnx.GraphProto, main: onnx.GraphProto, opset: int, marked: list[str],
                  ranks: dict[str, int]) -> None:
    nodes: list[onnx.NodeProto] = []
    for n in g.node:
        for a in n.attribute:
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                _expand_graph(sub, main, opset, marked, ranks)
        fn = EXPANSIONS.get(n.op_type) if n.domain == DOMAIN else None
        if fn is None:
            nodes.append(n)
            continue
        check_required(n)
        rw = Rewrite(n, opset, marked, ranks)
        fn(rw)
        nodes += rw.nodes
        main.initializer.extend(rw.initializers)
    del g.node[:]
    g.node.extend(nodes)

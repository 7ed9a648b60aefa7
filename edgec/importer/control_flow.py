"""`If` without control flow: its branches are inlined into the graph before import.

- A constant condition keeps the branch it selects (exporters leave `If(training)` or
  `If(opset check)` around).
- A condition computed at run time (a keyword-spotting head switching on a score) evaluates
  both branches and picks each output with `Where(cond, then_k, else_k)`. ONNX branches have
  no side effects, so computing both is correct; it needs both branches' outputs to have the
  same static shape, which the importer checks after shape inference (a mismatch means the
  output shape depends on the data, which a static graph cannot hold).

Branches may read values of the enclosing graph by name; every value a branch defines gets a
unique prefix, so inlined names never clash. Nested Ifs are inlined first.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgec.errors import ModelError
from edgec.importer.validate import where


def _constants(g: onnx.GraphProto) -> dict[str, np.ndarray]:
    out = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and len(n.attribute) == 1 \
                and n.attribute[0].name == "value":
            out[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return out


def _branch(node: onnx.NodeProto, name: str) -> onnx.GraphProto:
    for a in node.attribute:
        if a.name == name and a.type == onnx.AttributeProto.GRAPH:
            return a.g
    raise ModelError(f"{where(node)}: the {name} attribute (a graph) is missing")


def _inline_branch(branch: onnx.GraphProto, prefix: str, main: onnx.GraphProto) -> tuple[list[onnx.NodeProto], list[str]]:
    """The branch's nodes with every value it defines renamed; its initializers move to `main`.
    Returns the nodes and the (renamed) names of the branch's outputs."""
    inline_ifs_in(branch)
    defined = {i.name for i in branch.initializer} | {o for n in branch.node for o in n.output if o}
    rename = {v: f"{prefix}{v}" for v in defined}
    for init in branch.initializer:
        t = onnx.TensorProto()
        t.CopyFrom(init)
        t.name = rename[init.name]
        main.initializer.append(t)
    nodes = []
    for n in branch.node:
        m = onnx.NodeProto()
        m.CopyFrom(n)
        m.name = f"{prefix}{n.name}" if n.name else ""
        m.input[:] = [rename.get(i, i) for i in n.input]
        m.output[:] = [rename.get(o, o) for o in n.output]
        nodes.append(m)
    return nodes, [rename.get(o.name, o.name) for o in branch.output]


Pairs = list[tuple[str, str, str]]  # (then output, else output, "If node 'name'")


def inline_ifs_in(g: onnx.GraphProto, pairs: Pairs | None = None) -> None:
    """Replace every `If` of `g` (in place) by its inlined branches; `pairs` collects the
    branch outputs that a Where selects between (their shapes must agree)."""
    if not any(n.op_type == "If" and n.domain in ("", "ai.onnx") for n in g.node):
        return
    consts = _constants(g)
    nodes: list[onnx.NodeProto] = []
    for k, node in enumerate(g.node):
        if node.op_type != "If" or node.domain not in ("", "ai.onnx"):
            nodes.append(node)
            continue
        then_g, else_g = _branch(node, "then_branch"), _branch(node, "else_branch")
        outs = list(node.output)
        if len(then_g.output) != len(outs) or len(else_g.output) != len(outs):
            raise ModelError(f"{where(node)}: its branches must have {len(outs)} output(s)")
        prefix = f"{outs[0] or 'if'}__if{k}_"
        cond = node.input[0] if node.input else ""
        if cond in consts:
            c = np.asarray(consts[cond]).reshape(-1)
            if c.size != 1:
                raise ModelError(f"{where(node)}: the condition must hold one value")
            body, results = _inline_branch(then_g if bool(c[0]) else else_g, prefix, g)
            nodes += body
            nodes += [helper.make_node("Identity", [r], [o]) for r, o in zip(results, outs) if o]
            continue
        then_nodes, then_out = _inline_branch(then_g, prefix + "then_", g)
        else_nodes, else_out = _inline_branch(else_g, prefix + "else_", g)
        scalar = f"{prefix}cond"
        g.initializer.append(numpy_helper.from_array(np.zeros(0, np.int64), f"{prefix}scalar_shape"))
        nodes += then_nodes + else_nodes
        nodes.append(helper.make_node("Reshape", [cond, f"{prefix}scalar_shape"], [scalar]))
        nodes += [helper.make_node("Where", [scalar, t, e], [o]) for t, e, o in zip(then_out, else_out, outs) if o]
        if pairs is not None:
            pairs += [(t, e, where(node)) for t, e, o in zip(then_out, else_out, outs) if o]
    del g.node[:]
    g.node.extend(nodes)


def inline_ifs(model: onnx.ModelProto) -> Pairs:
    pairs: Pairs = []
    inline_ifs_in(model.graph, pairs)
    return pairs


def check_branch_shapes(pairs: Pairs, infos: dict[str, onnx.ValueInfoProto]) -> None:
    """Both branches of a run-time If must give outputs of one static shape."""
    def shape(name: str) -> list | None:
        vi = infos.get(name)
        if vi is None or not vi.type.tensor_type.HasField("shape"):
            return None
        return [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]

    for t, e, what in pairs:
        st, se = shape(t), shape(e)
        if st is not None and se is not None and st != se:
            raise ModelError(f"{what}: its branches give outputs of shapes {st} and {se}; with a condition "
                             "known only at run time the output shape would depend on the data")

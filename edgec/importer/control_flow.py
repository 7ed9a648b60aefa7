"""`If` without control flow: its branches are inlined into the graph during constant folding.

- A condition that folds to a constant keeps the branch it selects. Exporters leave
  `If(training)`, `If(opset check)` and `If(x.dim() == 1)` around; silero-vad switches on the
  sample rate (a graph input to --bind) and on input ranks (constants once input shapes are
  fixed). Such a condition is often only known after shape inference and folding, and the branch
  not taken is often invalid for the shapes at hand, so Ifs stay in the graph while folding runs
  (edgec/importer/fold.py inlines one as soon as its condition is a constant).
- A condition still computed at run time once folding is done (a keyword-spotting head
  switching on a score) evaluates both branches and picks each output with
  `Where(cond, then_k, else_k)`. ONNX branches have no side effects, so computing both is
  correct; it needs both branches' outputs to have the same static shape, which the importer
  checks after shape inference (a mismatch means the output shape depends on the data, which a
  static graph cannot hold).

Branches may read values of the enclosing graph by name; every value a branch defines gets a
unique prefix (also where a nested If's branches read it), so inlined names never clash. A
nested If becomes a node of the enclosing graph and is resolved in a later round.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgec.errors import ModelError
from edgec.importer.validate import where


def is_if(node: onnx.NodeProto) -> bool:
    return node.op_type == "If" and node.domain in ("", "ai.onnx")


def _branch(node: onnx.NodeProto, name: str) -> onnx.GraphProto:
    for a in node.attribute:
        if a.name == name and a.type == onnx.AttributeProto.GRAPH:
            return a.g
    raise ModelError(f"{where(node)}: the {name} attribute (a graph) is missing")


def _rename_refs(g: onnx.GraphProto, rename: dict[str, str]) -> None:
    """Outer-scope references inside (nested) subgraphs follow the renamed values. ONNX names
    are unique across scopes, so a name defined inside a subgraph is never in `rename`."""
    for n in g.node:
        n.input[:] = [rename.get(i, i) for i in n.input]
        for a in n.attribute:
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                _rename_refs(sub, rename)
    for o in g.output:
        o.name = rename.get(o.name, o.name)


def prefix_of(node: onnx.NodeProto) -> str:
    """Unique per If: its first output name is unique in the model (SSA)."""
    first = next((o for o in node.output if o), node.name or "if")
    return f"{first}__if_"


def inline_branch(node: onnx.NodeProto, which: str, prefix: str
                  ) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], list[str]]:
    """The nodes of `which` branch with every value it defines renamed, its initializers
    (renamed), and the renamed names of the branch's outputs."""
    branch = _branch(node, which)
    if len(branch.output) != len(node.output):
        raise ModelError(f"{where(node)}: its {which} must have {len(node.output)} output(s)")
    defined = {i.name for i in branch.initializer} | {o for n in branch.node for o in n.output if o}
    rename = {v: f"{prefix}{v}" for v in defined}
    inits = []
    for init in branch.initializer:
        t = onnx.TensorProto()
        t.CopyFrom(init)
        t.name = rename[init.name]
        inits.append(t)
    nodes = []
    for n in branch.node:
        m = onnx.NodeProto()
        m.CopyFrom(n)
        m.name = f"{prefix}{n.name}" if n.name else ""
        m.input[:] = [rename.get(i, i) for i in n.input]
        m.output[:] = [rename.get(o, o) for o in n.output]
        for a in m.attribute:
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                _rename_refs(sub, rename)
        nodes.append(m)
    return nodes, inits, [rename.get(o.name, o.name) for o in branch.output]


def select_branch(node: onnx.NodeProto, cond: np.ndarray
                  ) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """An If whose condition is the constant `cond` -> the branch it selects, its outputs
    passed on by Identity nodes."""
    c = np.asarray(cond).reshape(-1)
    if c.size != 1:
        raise ModelError(f"{where(node)}: the condition must hold one value")
    which = "then_branch" if bool(c[0]) else "else_branch"
    nodes, inits, results = inline_branch(node, which, prefix_of(node) + which[:4] + "_")
    nodes += [helper.make_node("Identity", [r], [o]) for r, o in zip(results, node.output) if o]
    return nodes, inits


Pairs = list[tuple[str, str, str]]  # (then output, else output, "If node 'name'")


def inline_runtime_ifs(g: onnx.GraphProto) -> Pairs:
    """Replace every If left in `g` (in place; their conditions did not fold) by both branches
    and a Where per output. Returns the branch outputs whose shapes must agree. Ifs nested in
    the branches become nodes of `g`, for the next round of folding."""
    nodes: list[onnx.NodeProto] = []
    pairs: Pairs = []
    for node in g.node:
        if not is_if(node):
            nodes.append(node)
            continue
        prefix = prefix_of(node)
        then_nodes, then_inits, then_out = inline_branch(node, "then_branch", prefix + "then_")
        else_nodes, else_inits, else_out = inline_branch(node, "else_branch", prefix + "else_")
        g.initializer.extend(then_inits + else_inits)
        g.initializer.append(numpy_helper.from_array(np.zeros(0, np.int64), f"{prefix}scalar_shape"))
        scalar = f"{prefix}cond"
        nodes += then_nodes + else_nodes
        nodes.append(helper.make_node("Reshape", [node.input[0], f"{prefix}scalar_shape"], [scalar]))
        for t, e, o in zip(then_out, else_out, node.output):
            if o:
                nodes.append(helper.make_node("Where", [scalar, t, e], [o]))
                pairs.append((t, e, where(node)))
    del g.node[:]
    g.node.extend(nodes)
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

"""Graph-level mutations: structure (dangling inputs, duplicate outputs, cycles, removed nodes,
outputs never produced, ...), long chains, subgraphs (If, nested deeply) and Constant nodes
holding hostile tensors."""

from __future__ import annotations

import random

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


# ---- graph structure ---------------------------------------------------------------------------
def graph_structure(m: onnx.ModelProto, rng: random.Random) -> str:
    g = m.graph
    nodes = list(g.node)
    how = rng.choice(
        [
            "dangling",
            "dup_output",
            "cycle",
            "remove_node",
            "ghost_output",
            "unsorted",
            "empty_input",
            "extra_outputs",
            "no_outputs",
            "input_is_output",
            "init_is_output",
            "dup_graph_output",
            "unknown_op",
            "self_loop",
            "no_nodes",
        ]
    )
    n = rng.choice(nodes)
    if how == "dangling" and n.input:
        n.input[rng.randrange(len(n.input))] = "nowhere"
    elif how == "dup_output" and len(nodes) > 1:
        nodes[0].output[0] = nodes[1].output[0]
    elif how == "cycle" and len(nodes) > 1:
        nodes[0].input[0] = nodes[-1].output[0]
    elif how == "self_loop":
        n.input[0] = n.output[0]
    elif how == "remove_node":
        g.node.remove(n)
    elif how == "ghost_output":
        g.output[0].name = "ghost"
    elif how == "unsorted" and len(nodes) > 1:
        g.node.remove(nodes[-1])
        g.node.insert(0, nodes[-1])
    elif how == "empty_input" and n.input:
        n.input[0] = ""
    elif how == "extra_outputs":
        n.output.append("extra_out")
    elif how == "no_outputs":
        del g.output[:]
    elif how == "input_is_output":
        g.output.append(g.input[0])
    elif how == "init_is_output" and g.initializer:
        t = g.initializer[0]
        g.output.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    elif how == "dup_graph_output":
        g.output.append(g.output[0])
    elif how == "unknown_op":
        n.op_type = rng.choice(["Bogus", "", "Conv\n", "x" * 500, "Relu;"])
        n.domain = rng.choice(["", "com.evil", "ai.onnx.ml"])
    else:
        del g.node[:]
    return f"{how} (node {n.name})"


def graph_long_chain(m: onnx.ModelProto, rng: random.Random) -> str:
    """A legal but long chain of Relu nodes in front of the first graph output."""
    g = m.graph
    count = rng.choice([200, 600])
    out = g.output[0].name
    producer = next(n for n in g.node if out in n.output)
    k = list(producer.output).index(out)
    producer.output[k] = "chain_0"
    for i in range(count):
        g.node.append(
            helper.make_node("Relu", [f"chain_{i}"], [out if i == count - 1 else f"chain_{i + 1}"])
        )
    return f"{count} Relu nodes chained"


def _first_float_input(m: onnx.ModelProto) -> tuple[onnx.NodeProto, int]:
    """A node input that carries the graph's (float) first input, to splice a new op in front."""
    x = m.graph.input[0].name
    for n in m.graph.node:
        for k, i in enumerate(n.input):
            if i == x:
                return n, k
    return m.graph.node[0], 0


def graph_subgraph(m: onnx.ModelProto, rng: random.Random) -> str:
    """An If node (constant condition) in front of the first consumer of the input; its
    branches hold a Relu, hostile names or nest further If nodes."""
    n, k = _first_float_input(m)
    x = n.input[k]
    how = rng.choice(["plain", "nested", "deep", "bad_branch", "outer_ref", "no_else"])

    def branch(name: str, depth: int) -> onnx.GraphProto:
        out = helper.make_tensor_value_info(f"{name}_o", TensorProto.FLOAT, None)
        if depth > 0:
            cond = helper.make_node(
                "Constant",
                [],
                [f"{name}_c"],
                value=numpy_helper.from_array(np.array(True), f"{name}_ct"),
            )
            inner = helper.make_node(
                "If",
                [f"{name}_c"],
                [f"{name}_o"],
                then_branch=branch(f"{name}t", depth - 1),
                else_branch=branch(f"{name}e", 0),
            )  # a chain, not a tree
            return helper.make_graph([cond, inner], name, [], [out])
        src = "nowhere" if how == "bad_branch" else x
        return helper.make_graph([helper.make_node("Relu", [src], [f"{name}_o"])], name, [], [out])

    depth = {"nested": 3, "deep": rng.choice([8, 25])}.get(how, 0)  # protobuf parses <= 100 levels
    m.graph.initializer.append(numpy_helper.from_array(np.array(rng.random() < 0.5), "if_cond"))
    attrs = {"then_branch": branch("t", depth)}
    if how != "no_else":
        attrs["else_branch"] = branch("e", depth)
    node = helper.make_node("If", ["if_cond"], ["if_out"], name="if", **attrs)
    m.graph.node.insert(0, node)
    n.input[k] = "if_out"
    return f"If in front of {n.name}: {how} (depth {depth})"


def graph_constant(m: onnx.ModelProto, rng: random.Random) -> str:
    """A Constant node whose value is added to the input: hostile tensors reach edgec through
    an attribute instead of an initializer."""
    n, k = _first_float_input(m)
    how = rng.choice(
        [
            "nan",
            "huge_dims",
            "short_raw",
            "sparse",
            "strings",
            "value_float",
            "value_ints",
            "no_value",
            "two_values",
            "wrong_dtype",
        ]
    )
    t = numpy_helper.from_array(np.float32(1.5).reshape(()), "cval")
    attrs: dict[str, object] = {"value": t}
    if how == "nan":
        attrs["value"] = numpy_helper.from_array(np.array(np.nan, np.float32), "cval")
    elif how == "huge_dims":
        t.dims.extend([2**31, 2**31])
    elif how == "short_raw":
        t.dims.extend([4])
    elif how == "sparse":
        attrs = {
            "sparse_value": helper.make_sparse_tensor(
                numpy_helper.from_array(np.array([1.0], np.float32), "v"),
                numpy_helper.from_array(np.array([rng.choice([1, 2**40])], np.int64), "i"),
                [4],
            )
        }
    elif how == "strings":
        attrs = {"value_strings": [b"a", b"b"]}
    elif how == "value_float":
        attrs = {"value_float": float(rng.choice([np.nan, np.inf, 2.0]))}
    elif how == "value_ints":
        attrs = {"value_ints": [1, 2, 3]}
    elif how == "no_value":
        attrs = {}
    elif how == "two_values":
        attrs["value_float"] = 2.0
    else:
        t.data_type = rng.choice([0, 8, 999])
    const = helper.make_node("Constant", [], ["const_out"], name="const", **attrs)
    add = helper.make_node("Add", [n.input[k], "const_out"], ["const_sum"], name="const_add")
    m.graph.node.insert(0, add)
    m.graph.node.insert(0, const)
    n.input[k] = "const_sum"
    return f"Constant ({how}) added in front of {n.name}"


# Valid but unusual attribute values: the model stays valid (output shapes are cleared, so
# shape inference recomputes them) and edgec's outputs must match onnxruntime's.
VALID: dict[str, list[dict[str, object]]] = {
    "Conv": [
        {"strides": [2, 2]},
        {"strides": [1, 2]},
        {"pads": [0, 1, 2, 0]},
        {"pads": [2, 2, 2, 2]},
        {"dilations": [2, 2]},
        {"auto_pad": b"SAME_UPPER", "pads": None},
        {"auto_pad": b"SAME_LOWER", "pads": None, "strides": [2, 2]},
        {"auto_pad": b"VALID", "pads": None},
        {"strides": [3, 3], "pads": [0, 0, 0, 0]},
    ],
    "MaxPool": [
        {"kernel_shape": [3, 3]},
        {"strides": [1, 1]},
        {"strides": [2, 1]},
        {"pads": [1, 1, 1, 1]},
        {"ceil_mode": 1, "kernel_shape": [3, 3]},
        {"dilations": [2, 2]},
        {"auto_pad": b"SAME_UPPER"},
        {"kernel_shape": [1, 1]},
    ],
    "Softmax": [{"axis": 0}, {"axis": -2}, {"axis": 1}],
    "Transpose": [{"perm": [2, 1, 0]}, {"perm": [1, 0, 2]}, {"perm": [0, 1, 2]}, {"perm": None}],
    "Resize": [
        {"mode": b"linear"},
        {"mode": b"cubic"},
        {"mode": b"linear", "coordinate_transformation_mode": b"align_corners"},
        {"mode": b"linear", "coordinate_transformation_mode": b"asymmetric"},
        {"mode": b"cubic", "cubic_coeff_a": -0.5, "exclude_outside": 1},
        {"coordinate_transformation_mode": b"pytorch_half_pixel", "mode": b"linear"},
        {"nearest_mode": b"floor"},
        {"nearest_mode": b"ceil"},
        {"coordinate_transformation_mode": b"asymmetric", "nearest_mode": b"round_prefer_ceil"},
    ],
    "GRU": [
        {"linear_before_reset": 0},
        {"clip": 0.5},
        {"activations": [b"Sigmoid", b"Tanh"]},
        {
            "activations": [b"HardSigmoid", b"Relu"],
            "activation_alpha": [0.3],
            "activation_beta": [0.4],
        },
        {"direction": b"reverse"},
    ],
    "Gather": [{"axis": -1}],
    "Reshape": [{"allowzero": 1}],
    "QuantizeLinear": [{"saturate": 1}],
}


def attr_valid(m: onnx.ModelProto, rng: random.Random) -> str:
    cands = [n for n in m.graph.node if n.op_type in VALID]
    if not cands:
        return "no node with valid variants: unchanged"
    n = rng.choice(cands)
    change = rng.choice(VALID[n.op_type])
    for key, value in change.items():
        for a in list(n.attribute):
            if a.name == key:
                n.attribute.remove(a)
        if value is not None:
            n.attribute.append(helper.make_attribute(key, value))
    for vi in m.graph.output:
        vi.type.tensor_type.ClearField("shape")
    del m.graph.value_info[:]
    return f"{n.name}: {change}"[:160]

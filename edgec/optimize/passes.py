"""Graph rewrites. Each pass is small, named, and returns the graph (mutated in place)."""

from __future__ import annotations

import numpy as np

from edgec.codegen.activations import FLOAT_UNARY
from edgec.ir.graph import Graph, Node, Value

# Activations a Conv/MatMul epilogue can apply (all float unary rules without state).
FUSABLE_ACTIVATIONS = {"Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish",
                       "Gelu", "Elu", "Selu", "Celu", "Softplus", "Swish"} & set(FLOAT_UNARY)
_ALIAS = {"Reshape"}


def dead_node_removal(g: Graph) -> Graph:
    live = set(g.outputs)
    kept: list[Node] = []
    for n in reversed(g.nodes):
        if any(o in live for o in n.outputs):
            kept.append(n)
            live.update(i for i in n.inputs if i)
            live.update(o for o in n.outputs if o)  # unused extra outputs still need their value
    g.nodes = kept[::-1]
    for name in [k for k, v in g.values.items() if k not in live and k not in g.inputs]:
        del g.values[name]
    return g


def _single_consumer(g: Graph, value: str, uses: dict[str, list[Node]]) -> Node | None:
    """The only node reading `value`, if it is not also a graph output. `uses` is computed once
    per pass: fusing renames a node's output to its consumer's output, whose readers stay valid."""
    if value in g.outputs:
        return None
    users = uses.get(value, [])
    return users[0] if len(users) == 1 else None


def _per_channel(g: Graph, name: str, channels: int, rank: int) -> np.ndarray | None:
    """The constant `name` as a per-channel vector if it broadcasts as (C,1,...,1) against NC..."""
    v = g.values.get(name)
    if v is None or not v.is_const or not np.issubdtype(v.dtype, np.floating):
        return None
    shape = v.shape
    if len(shape) > rank:
        return None
    full = (1,) * (rank - len(shape)) + tuple(shape)
    if full[0] != 1 or any(d != 1 for d in full[2:]) or full[1] not in (1, channels):
        return None
    return np.broadcast_to(v.data.reshape(-1), (channels,)).astype(np.float32)


def fold_scale_into_conv(g: Graph) -> Graph:
    """Conv/ConvTranspose -> Mul(per-channel const) / Add(per-channel const)  ==>  the same conv
    with new weights/bias. BatchNormalization is imported as Mul+Add, so this is BN folding."""
    uses = g.consumers()
    removed: set[int] = set()
    for n in g.nodes:
        if n.op not in ("Conv", "ConvTranspose") or n.attrs.get("activation") or id(n) in removed:
            continue
        while (user := _single_consumer(g, n.outputs[0], uses)) is not None:
            y = n.outputs[0]
            w = g.values[n.inputs[1]]
            if user.op not in ("Mul", "Add") or not w.is_const:
                break
            if len(n.inputs) > 2 and n.inputs[2] and not g.values[n.inputs[2]].is_const:
                break  # a runtime bias cannot be rescaled at build time
            other = user.inputs[1] if user.inputs[0] == y else user.inputs[0]
            channels = g.values[y].shape[1] if len(g.values[y].shape) > 1 else 0
            vec = _per_channel(g, other, channels, len(g.values[y].shape))
            if vec is None or g.values[user.outputs[0]].shape != g.values[y].shape:
                break
            bias = g.values[n.inputs[2]].data if len(n.inputs) > 2 and n.inputs[2] else np.zeros(channels, np.float32)
            if user.op == "Mul":
                new_w = _scale_output_channels(n, w.data, vec)
                new_b = bias * vec
            else:
                new_w, new_b = w.data, bias + vec
            n.inputs = [n.inputs[0], g.add_const(n.inputs[1] + "_folded", new_w.astype(w.dtype)),
                        g.add_const(f"{y}_bias", new_b.astype(w.dtype))]
            n.outputs = [user.outputs[0]]
            removed.add(id(user))
            del g.values[y]
    g.nodes = [n for n in g.nodes if id(n) not in removed]
    return g


def _scale_output_channels(n: Node, w: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Multiply every output channel's weights: Conv weights are (M, C/g, ...), ConvTranspose
    weights (C, M/g, ...) with output channel gi*M/g + j in column j of group gi's rows."""
    tail = (1,) * (w.ndim - 2)
    if n.op == "Conv":
        return w * scale.reshape((-1, 1) + tail)
    groups = int(n.attrs.get("group", 1))
    c, mg = w.shape[:2]
    grouped = w.reshape((groups, c // groups, mg) + w.shape[2:])
    return (grouped * scale.reshape((groups, 1, mg) + tail)).reshape(w.shape)


def fold_pad_into_conv(g: Graph) -> Graph:
    """Pad(zeros on H/W only) -> Conv  ==>  the Conv with larger pads: TF exports (and TFLite's
    PAD before a strided conv) spell asymmetric SAME padding as a separate Pad, a copy of the
    whole map per run."""
    uses = g.consumers()
    producers = g.producers()
    for n in list(g.nodes):
        p = producers.get(n.inputs[0]) if n.op == "Conv" and n.inputs else None
        if p is None or p.op != "Pad" or p.attrs.get("mode", "constant") != "constant" or p.attrs.get("value", 0) != 0:
            continue
        pads = list(p.attrs["pads"])
        if len(pads) != 8 or pads[0] or pads[1] or pads[4] or pads[5] or min(pads) < 0 \
                or _single_consumer(g, p.outputs[0], uses) is not n or len(n.attrs.get("pads", [])) != 4:
            continue
        pt, pl, pb, pr = n.attrs["pads"]
        n.attrs["pads"] = [pt + pads[2], pl + pads[3], pb + pads[6], pr + pads[7]]
        n.inputs[0] = p.inputs[0]
        g.nodes.remove(p)
        del g.values[p.outputs[0]]
    return g


def conv_as_dense(g: Graph) -> Graph:
    """A Conv whose window is its whole (unpadded) input, one output pixel per image, is a dense
    layer: Reshape(x to [N, C*H*W]) -> MatMul(W as [C*H*W, O]) -> Reshape to [N, O, 1, 1].
    MediaPipe's landmark heads end that way (3x3 over 3x3 to 1404 outputs); the generic conv
    kernel took 16% of face_landmark's time, the GEMV kernels take a fraction of it."""
    nodes: list[Node] = []
    for n in g.nodes:
        if n.op != "Conv" or len(n.inputs) < 2 or not g.values[n.inputs[1]].is_const:
            nodes.append(n)
            continue
        x, w, y = g.values[n.inputs[0]], g.values[n.inputs[1]], g.values[n.outputs[0]]
        if len(x.shape) != 4 or x.dtype != np.float32 or tuple(w.shape[2:]) != tuple(x.shape[2:]) \
                or n.attrs.get("group", 1) != 1 or any(n.attrs.get("pads", [0])) \
                or any(d != 1 for d in n.attrs.get("dilations", [1, 1])) or tuple(y.shape[2:]) != (1, 1):
            nodes.append(n)
            continue
        batch, k, outs = x.shape[0], int(np.prod(x.shape[1:])), w.shape[0]
        flat, prod = g.fresh(f"{n.inputs[0]}_flat"), g.fresh(f"{n.outputs[0]}_dense")
        g.values[flat] = Value(flat, x.dtype, (batch, k))
        g.values[prod] = Value(prod, y.dtype, (batch, outs))
        b = g.add_const(f"{n.inputs[1]}_dense", np.ascontiguousarray(np.asarray(w.data, np.float32).reshape(outs, k).T))
        bias = [n.inputs[2]] if len(n.inputs) > 2 and n.inputs[2] else []
        attrs = {"trans_a": False, "trans_b": False,
                 **({"activation": n.attrs["activation"]} if n.attrs.get("activation") else {})}
        nodes += [Node("Reshape", [n.inputs[0]], [flat], {}, n.name),
                  Node("MatMul", [flat, b, *bias], [prod], attrs, n.name),
                  Node("Reshape", [prod], [n.outputs[0]], {}, n.name)]
    g.nodes = nodes
    return g


def fuse_bias(g: Graph) -> Graph:
    """MatMul(A, B) + Add(bias over the last dim) ==> MatMul(A, B, bias)."""
    uses = g.consumers()
    for n in list(g.nodes):
        if n.op != "MatMul" or len(n.inputs) > 2 or n.attrs.get("activation"):
            continue
        y = n.outputs[0]
        user = _single_consumer(g, y, uses)
        if user is None or user.op != "Add":
            continue
        other = user.inputs[1] if user.inputs[0] == y else user.inputs[0]
        ov = g.values[other]
        cols = g.values[y].shape[-1] if g.values[y].shape else 1  # MatMul of two 1-D operands is a scalar
        if not ov.is_const or ov.size not in (1, cols) or any(d != 1 for d in ov.shape[:-1]) \
                or g.values[user.outputs[0]].shape != g.values[y].shape or ov.dtype != g.values[y].dtype:
            continue
        bias = np.broadcast_to(ov.data.reshape(-1), (cols,)).copy()
        n.inputs = [*n.inputs, g.add_const(f"{y}_bias", bias)]
        n.outputs = [user.outputs[0]]
        g.nodes.remove(user)
        del g.values[y]
    return g


def fuse_activation(g: Graph) -> Graph:
    """Conv/MatMul followed by a fusable activation ==> one kernel with an epilogue."""
    uses = g.consumers()
    for n in list(g.nodes):
        if n.op not in ("Conv", "MatMul", "ConvTranspose") or n.attrs.get("activation"):
            continue
        y = n.outputs[0]
        user = _single_consumer(g, y, uses)
        if user is None or user.op not in FUSABLE_ACTIVATIONS or g.values[y].dtype != np.float32:
            continue
        n.attrs["activation"] = (user.op, dict(user.attrs))
        n.outputs = [user.outputs[0]]
        g.nodes.remove(user)
        del g.values[y]
    return g


def materialize_outputs(g: Graph) -> Graph:
    """A graph output that is a constant (or an alias of one) gets a Copy into the arena."""
    roots: dict[str, str] = {}
    for n in g.nodes:
        if n.op in _ALIAS:
            roots[n.outputs[0]] = roots.get(n.inputs[0], n.inputs[0])
    for k, out in enumerate(g.outputs):
        src = roots.get(out, out)
        if not g.values[src].is_const:
            continue
        v = g.values[out]
        if v.is_const:
            new_const = g.add_const(f"{out}_const", v.data)
            g.values[out].data = None
            g.nodes.insert(0, Node("Copy", [new_const], [out], {}, f"output{k}"))
        else:
            prod = next(n for n in g.nodes if out in n.outputs)
            prod.op, prod.attrs = "Copy", {}
            prod.inputs = [src]
    return g


def zero_pad(g: Graph, nodes: list[Node], x: str, pads: tuple[int, int, int, int], name: str) -> str:
    """Append a Pad node zero-padding the H/W borders of NCHW `x` by (top, left, bottom, right);
    returns the padded value's name."""
    pt, pl, pb, pr = pads
    xs = g.values[x].shape
    padded = g.fresh(f"{x}_padded")
    g.values[padded] = Value(padded, g.values[x].dtype, (xs[0], xs[1], xs[2] + pt + pb, xs[3] + pl + pr))
    nodes.append(Node("Pad", [x], [padded], {"pads": [0, 0, pt, pl, 0, 0, pb, pr], "mode": "constant",
                                              "value": 0.0}, name))
    return padded

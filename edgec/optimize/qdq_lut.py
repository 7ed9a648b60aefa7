"""Part of pass `fold-qdq`: a region of float elementwise ops fed by one per-tensor
DequantizeLinear and ending in one QuantizeLinear has only 256 possible inputs, so it becomes
`QLut`: y = table[x], the table computed at build time. This is how an int8 PP-LCNet keeps its
HardSwish (exported as x * Clip(x + 3, 0, 6) / 6) and its HardSigmoid in int8 between convs,
instead of converting every tensor to float and back twice per layer.

The region: nodes reachable from the DQ output whose inputs are region values or scalar
constants, all of one shape, with exactly one value leaving the region, read only by a Q.
The table is the region evaluated on the 256 dequantized codes in float32 (binary ops and Clip
with numpy, unary activations with the ONNX reference evaluator: ONNX's semantics), then
quantized as QuantizeLinear does. It equals DQ -> ops -> Q up to the float ops' last bit at a
.5 rounding tie.
"""

from __future__ import annotations

import numpy as np

from edgec.ir.graph import Node
from edgec.optimize.qdq_match import _dq_input, _Fold, _params, _scalar

_BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
           "Max": np.maximum, "Min": np.minimum}
# unary float ops evaluated with onnx.reference, with the attributes they take
UNARY = {"Sigmoid": (), "Tanh": (), "HardSigmoid": ("alpha", "beta"), "HardSwish": (), "LeakyRelu": ("alpha",),
         "Elu": ("alpha",), "Selu": ("alpha", "gamma"), "Gelu": ("approximate",), "Softplus": (), "Softsign": (),
         "Exp": (), "Erf": (), "Neg": (), "Abs": (), "Relu": ()}
MAX_REGION = 16


def fold_lut_region(f: _Fold, dq: Node) -> None:
    g = f.g
    if _dq_input(g, f.prod, dq.outputs[0]) is not dq:
        return
    x0 = dq.outputs[0]
    shape = g.values[x0].shape
    region: list[Node] = []
    inside = {x0}
    pending: list[Node] = []  # consumers waiting for another input to join the region
    frontier = [x0]
    while frontier:
        v = frontier.pop()
        if v in g.outputs:
            return
        for n in [*f.uses.get(v, []), *pending]:
            if id(n) in f.removed or n in region or n.op == "QuantizeLinear":
                continue
            ok = _elementwise(g, n, inside, shape)
            if ok is None:
                if n not in pending:
                    pending.append(n)
                continue
            if not ok or len(region) >= MAX_REGION:
                return  # a consumer that cannot be part of a region: keep the float form
            if n in pending:
                pending.remove(n)
            region.append(n)
            inside.add(n.outputs[0])
            frontier.append(n.outputs[0])
    if pending:
        return
    # exactly one value leaves, read by one per-tensor Q (and nothing else)
    leaving = [v for v in inside if any(u not in region for u in f.uses.get(v, []))]
    if not region or len(leaving) != 1 or leaving[0] == x0:
        return
    sink = f.sink(leaving[0])
    users = f.uses.get(leaving[0], [])
    if sink is None or sink[1] or len(users) != 1:
        return
    q = sink[0]
    qdt = np.dtype(g.values[q.outputs[0]].dtype)
    if qdt.name not in ("uint8", "int8") or not _topological(region, inside, x0):
        return
    xq = dq.inputs[0]
    codes = np.arange(256) - (128 if np.dtype(g.values[xq].dtype) == np.int8 else 0)
    xs = (codes - int(_scalar(g, _params(dq)[2]) or 0)).astype(np.float32) * np.float32(_scalar(g, dq.inputs[1]))
    ys = _evaluate(g, region, x0, xs, leaving[0])
    if ys is None:
        return
    s, z = np.float32(_scalar(g, q.inputs[1])), int(_scalar(g, _params(q)[2]) or 0)
    lo, hi = (-128, 127) if qdt == np.int8 else (0, 255)
    with np.errstate(all="ignore"):
        scaled = np.nan_to_num(ys / s, nan=-np.inf)  # NaN -> qmin, as MLAS
    table = (np.clip(np.rint(scaled), lo - z, hi - z) + z).astype(qdt)
    ops = "+".join(n.op for n in region)
    lut = Node("QLut", [xq, f.const(f"{leaving[0]}_lut", table)], [q.outputs[0]], {"op": ops}, region[-1].name)
    last = region[-1]
    last.op, last.inputs, last.outputs, last.attrs = lut.op, lut.inputs, lut.outputs, lut.attrs
    for r in [*region[:-1], q]:
        f.removed.add(id(r))
    if all(id(u) in f.removed or u is last for u in f.uses.get(x0, [])):
        f.removed.add(id(dq))


def _elementwise(g: object, n: Node, inside: set[str], shape: tuple[int, ...]) -> bool | None:
    """True: `n` joins the region; False: it cannot; None: not yet (an input outside so far)."""
    if len(n.outputs) != 1 or g.values[n.outputs[0]].shape != shape:  # type: ignore[attr-defined]
        return False
    if n.op in UNARY or n.op == "Clip":
        return len(n.inputs) == 1 and n.inputs[0] in inside
    if n.op in _BINARY and len(n.inputs) == 2:
        if not all(i in inside or _scalar(g, i) is not None or not g.values[i].is_const  # type: ignore[attr-defined]
                   for i in n.inputs):
            return False
        return True if all(i in inside or _scalar(g, i) is not None for i in n.inputs) else None  # type: ignore[arg-type]
    return False


def _topological(region: list[Node], inside: set[str], x0: str) -> bool:
    """Order `region` so every node follows its region inputs (in place); False on a cycle."""
    done, order, todo = {x0}, [], list(region)
    while todo:
        ready = [n for n in todo if all(i in done or i not in inside for i in n.inputs)]
        if not ready:
            return False
        for n in ready:
            order.append(n)
            done.add(n.outputs[0])
            todo.remove(n)
    region[:] = order
    return True


def _evaluate(g: object, region: list[Node], x0: str, xs: np.ndarray, out: str) -> np.ndarray | None:
    vals = {x0: xs}
    with np.errstate(all="ignore"):
        for n in region:
            if n.op == "Clip":
                y = np.minimum(np.maximum(vals[n.inputs[0]], np.float32(n.attrs["min"])), np.float32(n.attrs["max"]))
            elif n.op in _BINARY:
                a, b = (vals[i] if i in vals else np.float32(_scalar(g, i)) for i in n.inputs)  # type: ignore[arg-type]
                y = _BINARY[n.op](a, b)
            else:
                y = _unary(n.op, n.attrs, vals[n.inputs[0]])
                if y is None:
                    return None
            vals[n.outputs[0]] = np.asarray(y, np.float32)
    return vals[out]


def _unary(op: str, attrs: dict, xs: np.ndarray) -> np.ndarray | None:
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    keep = {k: v for k, v in attrs.items() if k in UNARY[op]}
    node = helper.make_node(op, ["x"], ["y"], **keep)
    graph = helper.make_graph([node], "lut", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [xs.size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [xs.size])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    return np.asarray(ReferenceEvaluator(model).run(None, {"x": xs})[0], np.float32)

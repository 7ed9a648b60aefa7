"""Float-graph simplifications that run before calibration, so that quantization points fall
where the integer kernels need them and nowhere else (issue 16, scope 5):

- `fold_constants`: a node whose inputs are all initializers (paddle2onnx writes every bias as
  `Reshape(const, const)`) becomes an initializer, evaluated with `onnx.reference`.
- `fold_affine`: a Conv followed by per-channel affine ops on its output alone -
  BatchNormalization, Add/Sub/Mul/Div with a constant that is a scalar or per-output-channel
  (PP-LCNetV3's "learnable affine blocks" `Conv -> Add(b) -> Mul(s) -> Add(c)`) - becomes one
  Conv with scaled weights and bias. Calibrating and quantizing each intermediate instead puts a
  rounding step after every one of them (PP-OCRv5 det: output cosine 0.11).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

# ops worth folding when all their inputs are constant: cheap, deterministic, small outputs
_FOLDABLE = {"Reshape", "Unsqueeze", "Squeeze", "Flatten", "Transpose", "Cast", "Concat", "Add", "Sub",
             "Mul", "Div", "Neg", "Sqrt", "Reciprocal", "Identity", "Expand"}
_AFFINE = {"Add", "Sub", "Mul", "Div"}


def prune_initializers(m: onnx.ModelProto) -> onnx.ModelProto:
    used = {i for n in m.graph.node for i in n.input} | {o.name for o in m.graph.output}
    kept = [i for i in m.graph.initializer if i.name in used]
    del m.graph.initializer[:]
    m.graph.initializer.extend(kept)
    inputs = [i for i in m.graph.input if i.name in used or i.name not in {t.name for t in kept}]
    del m.graph.input[:]
    m.graph.input.extend(inputs)
    return m


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    return m


def fold_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` where every node of `_FOLDABLE` with only initializer inputs (and no
    graph-output output) is replaced by initializers holding its results."""
    from onnx.reference import ReferenceEvaluator

    m = _copy(model)
    g = m.graph
    consts = {i.name: i for i in g.initializer}
    graph_inputs = {i.name for i in g.input} - set(consts)
    outputs = {o.name for o in g.output}
    opset = [o for o in m.opset_import]
    kept = []
    for n in g.node:
        ins = [i for i in n.input if i]
        if (n.op_type not in _FOLDABLE or n.domain not in ("", "ai.onnx") or not ins
                or not all(i in consts and i not in graph_inputs for i in ins)
                or any(o in outputs for o in n.output)):
            kept.append(n)
            continue
        sub = onnx.helper.make_graph([n], "fold", [], [onnx.helper.make_empty_tensor_value_info(o) for o in n.output],
                                     [consts[i] for i in dict.fromkeys(ins)])
        try:
            vals = ReferenceEvaluator(onnx.helper.make_model(sub, opset_imports=opset)).run(None, {})
        except Exception:  # noqa: BLE001 - leave a node the reference cannot evaluate in place
            kept.append(n)
            continue
        for o, v in zip(n.output, vals):
            t = numpy_helper.from_array(np.asarray(v), o)
            g.initializer.append(t)
            consts[o] = t
    del g.node[:]
    g.node.extend(kept)
    return prune_initializers(m)


def _per_channel(c: np.ndarray, channels: int, rank: int) -> np.ndarray | None:
    """`c` as a [channels] vector when broadcasting it against a [N, channels, ...] tensor of
    `rank` only varies along axis 1 (a scalar, [1], [C, 1, 1], [1, C, 1, 1], ...), else None."""
    if c.ndim > rank or not np.issubdtype(c.dtype, np.floating):
        return None
    full = (1,) * (rank - c.ndim) + c.shape
    if any(d != 1 for k, d in enumerate(full) if k != 1) or full[1] not in (1, channels):
        return None
    return np.broadcast_to(c.reshape(-1), (channels,)).astype(np.float64)


def fold_affine(model: onnx.ModelProto) -> onnx.ModelProto:
    """Conv -> [BatchNormalization | Add/Sub/Mul/Div by a per-channel constant]* becomes one Conv
    (each step only when the previous output has that op as its only consumer and is not a graph
    output)."""
    m = _copy(model)
    g = m.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    outputs = {o.name for o in g.output}
    drop: set[int] = set()
    ids = {id(n): k for k, n in enumerate(g.node)}
    for n in g.node:
        if n.op_type != "Conv" or len(n.input) < 2 or n.input[1] not in inits:
            continue
        w = inits[n.input[1]].astype(np.float64)
        rank = w.ndim
        has_b = len(n.input) > 2 and n.input[2] in inits
        b = inits[n.input[2]].astype(np.float64).reshape(-1) if has_b else np.zeros(w.shape[0])
        out, folded = n.output[0], []
        while out not in outputs and len(cons := consumers.get(out, [])) == 1:
            step = _affine_step(cons[0], out, inits, w.shape[0], rank)
            if step is None:
                break
            scale, shift = step
            w = w * scale.reshape(-1, *[1] * (rank - 1))
            b = b * scale + shift
            folded.append(cons[0])
            out = cons[0].output[0]
        if not folded:
            continue
        wname, bname = f"{n.input[1]}_folded", f"{out}_folded_bias"
        g.initializer.append(numpy_helper.from_array(w.astype(np.float32), wname))
        g.initializer.append(numpy_helper.from_array(b.astype(np.float32), bname))
        inits[wname] = w
        x = n.input[0]
        del n.input[:]
        n.input.extend([x, wname, bname])
        n.output[0] = out
        drop |= {ids[id(f)] for f in folded}
    kept = [n for k, n in enumerate(g.node) if k not in drop]
    del g.node[:]
    g.node.extend(kept)
    return prune_initializers(m)


def _affine_step(n: onnx.NodeProto, x: str, inits: dict[str, np.ndarray], channels: int,
                 rank: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(scale, shift) per channel when `n` computes scale * x + shift, else None."""
    if n.domain not in ("", "ai.onnx"):
        return None
    if n.op_type == "BatchNormalization":
        if (len(n.output) > 1 and any(n.output[1:])) or n.input[0] != x or not all(
                i in inits for i in n.input[1:5]):
            return None
        eps = next((a.f for a in n.attribute if a.name == "epsilon"), 1e-5)
        gamma, beta, mean, var = (inits[i].astype(np.float64).reshape(-1) for i in n.input[1:5])
        if gamma.size != channels:
            return None
        k = gamma / np.sqrt(var + eps)
        return k, beta - mean * k
    if n.op_type not in _AFFINE or len(n.input) != 2:
        return None
    other = n.input[1] if n.input[0] == x else n.input[0]
    if other not in inits or other == x:
        return None
    c = _per_channel(inits[other], channels, rank)
    if c is None:
        return None
    ones, zeros = np.ones(channels), np.zeros(channels)
    if n.op_type == "Add":
        return ones, c
    if n.op_type == "Mul":
        return c, zeros
    if n.op_type == "Sub":
        return (ones, -c) if n.input[0] == x else (-ones, c)
    if n.input[0] != x or np.any(c == 0):  # Div: only x / c
        return None
    return 1.0 / c, zeros

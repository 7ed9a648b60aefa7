"""Constant folding at the ONNX level, before conversion.

Any node whose inputs are all constant is evaluated with `onnx.reference` (the ONNX reference
evaluator is the oracle for semantics), and Shape/Size of statically shaped values become
constants. This removes shape subgraphs (Shape -> Gather -> Concat -> Reshape) and lets
Range/Expand/Tile/ConstantOfShape disappear before they ever need a kernel.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from edgec.errors import ModelError
from edgec.importer.control_flow import is_if, select_branch
from edgec.importer.operands import check_fold, check_operands, too_costly_to_fold
from edgec.importer.validate import clean_message, value_nbytes, where

# Ops that must not be evaluated at build time even with constant inputs.
_NEVER_FOLD = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
               # its converter folds it and keeps the integer weights for the qdq pass
               "DequantizeLinear"}
# Folding these would only copy big weights around (Identity) or is always cheap: fine to fold.


def _static_shape(vi: onnx.ValueInfoProto | None) -> tuple[int, ...] | None:
    if vi is None or not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
        return None
    dims = []
    for d in vi.type.tensor_type.shape.dim:
        if not d.HasField("dim_value"):
            return None
        dims.append(d.dim_value)
    return tuple(dims)


def _shape_slice(node: onnx.NodeProto, shape: tuple[int, ...]) -> np.ndarray:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    start, end = attrs.get("start", 0), attrs.get("end", len(shape))
    return np.array(shape[start:end] if "end" in attrs else shape[start:], dtype=np.int64)


def _evaluate(node: onnx.NodeProto, feeds: dict[str, np.ndarray], opsets: list) -> list[np.ndarray]:
    inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(feeds[n].dtype), feeds[n].shape)
              for n in dict.fromkeys(i for i in node.input if i)]
    outputs = [helper.make_empty_tensor_value_info(o) for o in node.output if o]
    graph = helper.make_graph([node], "fold", inputs, outputs)
    model = helper.make_model(graph, opset_imports=opsets)
    sess = ReferenceEvaluator(model)
    return sess.run(None, {n: feeds[n] for n in dict.fromkeys(i for i in node.input if i)})


def fold_constants(model: onnx.ModelProto, value_infos: dict[str, onnx.ValueInfoProto],
                   supported: set[str]) -> tuple[list[onnx.NodeProto], dict[str, np.ndarray], bool]:
    """Return (nodes that stay, constants by name, whether anything was folded or inlined) for
    the main graph."""
    # Initializers were checked (edgec/importer/validate.py): to_array cannot fail on them.
    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    kept: list[onnx.NodeProto] = []
    opsets = list(model.opset_import)
    opset = next((o.version for o in opsets if o.domain in ("", "ai.onnx")), 0)

    def shape_of(name: str) -> tuple[int, ...] | None:
        return tuple(consts[name].shape) if name in consts else _static_shape(value_infos.get(name))

    work = deque(model.graph.node)
    changed = False
    while work:
        node = work.popleft()
        if is_if(node):  # resolved here once its condition is a constant (control_flow.py)
            if node.input and node.input[0] in consts:
                nodes, inits = select_branch(node, consts[node.input[0]])
                for t in inits:
                    try:
                        consts[t.name] = numpy_helper.to_array(t)
                    except Exception as exc:  # noqa: BLE001 - a branch tensor not checked before
                        raise ModelError(f"{where(node)}: a branch initializer is malformed: "
                                         f"{clean_message(exc)}") from None
                work.extendleft(reversed(nodes))
                changed = True
            else:
                kept.append(node)
            continue
        if node.domain not in ("", "ai.onnx"):
            kept.append(node)
            continue
        check_operands(node, consts, opset)
        real_inputs = [i for i in node.input if i]
        result: list[np.ndarray] | None = None
        if node.op_type == "Constant":
            try:
                result = _evaluate(node, {}, opsets)
            except Exception as exc:  # noqa: BLE001 - the checker let a malformed value through
                raise ModelError(f"cannot evaluate {where(node)}: {clean_message(exc)}") from None
        elif node.op_type in ("Shape", "Size"):
            shape = consts[node.input[0]].shape if node.input[0] in consts else _static_shape(
                value_infos.get(node.input[0]))
            if shape is not None:
                if node.op_type == "Shape":
                    result = [_shape_slice(node, tuple(shape))]
                else:
                    result = [np.array(int(np.prod(shape, dtype=np.int64)), dtype=np.int64)]
        elif node.op_type not in _NEVER_FOLD and all(i in consts for i in real_inputs) and (
                real_inputs or node.op_type not in supported):
            # Nodes with no inputs at all (e.g. RandomX) are folded only when edgec has no kernel.
            check_fold(node, consts, shape_of)
            if node.op_type in supported and too_costly_to_fold(node, consts):
                kept.append(node)  # compiled instead of evaluated for minutes at build time
                continue
            try:
                result = _evaluate(node, consts, opsets)
            except Exception as exc:  # noqa: BLE001 - the reference evaluator raises many kinds
                if node.op_type in supported:
                    result = None  # leave it to the compiler
                else:
                    raise ModelError(f"cannot evaluate constant {where(node)}: "
                                     f"{clean_message(exc)}") from None
        if result is None:
            kept.append(node)
            continue
        changed = True
        for name, arr in zip([o for o in node.output if o], result):
            if name:
                consts[name] = np.asarray(arr)
                value_nbytes(name, consts[name].shape, consts[name].dtype)
    return kept, consts, changed

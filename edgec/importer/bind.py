"""Shape operands: graph inputs that decide output shapes, and `--bind` to freeze them.

edgec compiles static graphs: an operand that decides a shape (Reshape's shape, Slice's
starts/ends, Reduce* axes, Resize scales/sizes, Tile repeats, ...) must be known at build time.
When a model feeds one as a graph input, `edgec build --bind NAME=v1,v2,...` (Python:
`bind={"NAME": values}`) turns that input into a constant before anything else looks at the
model; the bundle no longer has that input. An unbound one is refused up front, naming the flag.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgec.errors import ModelError
from edgec.importer.validate import show, where

# op -> input positions whose *values* decide the output shape or which computation runs (not data)
SHAPE_OPERANDS: dict[str, tuple[int, ...]] = {
    "Reshape": (1,), "Expand": (1,), "Tile": (1,), "Slice": (1, 2, 3, 4), "Split": (1,),
    "Squeeze": (1,), "Unsqueeze": (1,), "Pad": (1, 3), "Resize": (1, 2, 3), "Upsample": (1,),
    "ConstantOfShape": (0,), "Range": (0, 1, 2), "TopK": (1,), "OneHot": (1,), "CenterCropPad": (1,),
    "Dropout": (1, 2),  # ratio and training_mode decide what runs (only ratio 0 or inference compiles)
    **{op: (1,) for op in ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
                           "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")},
}
MAX_BOUND_ELEMENTS = 1 << 16  # a shape operand is a handful of numbers


class UnboundShapeOperandError(ModelError):
    """Graph inputs used as shape operands and not bound; `names` lists them."""

    def __init__(self, names: list[str], uses: list[str]):
        self.names = names
        example = names[0]
        super().__init__(
            f"{', '.join(uses[:4])}{' ...' if len(uses) > 4 else ''}: graph input(s) "
            f"{', '.join(map(show, names[:6]))} decide output shapes (or what runs), and edgec compiles "
            "static graphs; "
            f"freeze them with --bind {example}=V1,V2,... (Python: bind={{{example!r}: [...]}})")


def _runtime_inputs(graph: onnx.GraphProto) -> dict[str, onnx.ValueInfoProto]:
    inits = {i.name for i in graph.initializer}
    return {i.name: i for i in graph.input if i.name not in inits}


def shape_operand_inputs(model: onnx.ModelProto) -> dict[str, list[str]]:
    """Graph inputs (not initializers) whose values decide a shape -> where: read directly as a
    shape operand, or through the small computation that makes one (exporters expand
    CenterCropPad into Shape/Max/Sub/Div/Concat feeding Pad and Slice). Shape and Size are not
    followed: their output depends on their input's shape, not its values."""
    runtime = _runtime_inputs(model.graph)
    producer = {o: n for n in model.graph.node for o in n.output if o}
    found: dict[str, list[str]] = {}
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        for k in SHAPE_OPERANDS.get(node.op_type, ()):
            if k >= len(node.input) or not node.input[k]:
                continue
            use = f"input {k} of {where(node)}"
            stack, seen = [node.input[k]], set()
            while stack:
                v = stack.pop()
                if v in seen:
                    continue
                seen.add(v)
                if v in runtime:
                    if use not in found.setdefault(v, []):
                        found[v].append(use)
                elif v in producer and producer[v].op_type not in ("Shape", "Size"):
                    stack.extend(i for i in producer[v].input if i)
    return found


def check_bound(model: onnx.ModelProto) -> None:
    found = shape_operand_inputs(model)
    if found:
        raise UnboundShapeOperandError(sorted(found), [u for n in sorted(found) for u in found[n]])


def bind_inputs(model: onnx.ModelProto, bind: Mapping[str, object] | None) -> None:
    """Turn each bound graph input into an initializer of its declared type (in place)."""
    if not bind:
        return
    if not isinstance(bind, Mapping):
        raise ModelError(f"bind must map input names to values, not {type(bind).__name__}")
    runtime = _runtime_inputs(model.graph)
    for name, values in bind.items():
        if name not in runtime:
            raise ModelError(f"--bind {show(name)}: the model has no graph input of that name "
                             f"(inputs: {', '.join(map(show, list(runtime)[:10]))})")
        vi = runtime[name]
        tt = vi.type.tensor_type
        try:
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type))
        except (KeyError, ValueError, TypeError):
            raise ModelError(f"--bind {show(name)}: the input has no tensor element type") from None
        arr = _as_array(name, values, dtype)
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim] \
            if tt.HasField("shape") else None
        if dims is not None and None not in dims:
            if int(np.prod(dims, dtype=np.int64)) != arr.size:
                raise ModelError(f"--bind {show(name)}: {arr.size} value(s) given, the input has shape {dims}")
            arr = arr.reshape(dims)
        elif dims is not None and len(dims) == 0:
            arr = arr.reshape(())
        model.graph.initializer.append(numpy_helper.from_array(arr, name))
        keep = [i for i in model.graph.input if i.name != name]
        del model.graph.input[:]
        model.graph.input.extend(keep)


def _as_array(name: str, values: object, dtype: np.dtype) -> np.ndarray:
    try:
        raw = np.asarray(values)
        if raw.dtype == object or raw.size > MAX_BOUND_ELEMENTS or raw.ndim > 8:
            raise ValueError
        arr = raw.astype(dtype).reshape(-1) if raw.ndim else raw.astype(dtype).reshape(1)
        exact = dtype.kind not in "iub" or np.array_equal(arr.astype(np.float64), raw.astype(np.float64).reshape(-1))
    except (ValueError, TypeError, OverflowError):
        raise ModelError(f"--bind {show(name)}: expected up to {MAX_BOUND_ELEMENTS} numbers") from None
    if not exact:
        raise ModelError(f"--bind {show(name)}: the values do not fit the input's type {dtype.name}")
    return np.ascontiguousarray(arr)

"""Mutations of a seed ModelProto: initializers, dims, dtypes, attributes, graph structure,
opsets, NaN/Inf in weights and shape operands, quantization parameters. Each mutator changes
the model in place and returns a one-line description; all choices come from the case's
random.Random, so a case is reproducible from (seed, index)."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from tests.fuzz.mutate_graph import (
    attr_valid,
    graph_constant,
    graph_long_chain,
    graph_structure,
    graph_subgraph,
)
from tests.fuzz.mutate_values import nan_weights, quant_params, shape_operands

Mutator = Callable[[onnx.ModelProto, random.Random], str]

HUGE = [2**31, 2**31 - 1, 2**32 + 1, 2**40, 2**62, 2**63 - 1]
ODD_DTYPES = [0, 8, 11, 14, 15, 16, 17, 22, 23, 24, 25, 999, -1, 2**31 - 1]
ODD_INTS = [0, -1, -2, 2**31, 2**62, -(2**63), 7, 99]


def _float_inits(m: onnx.ModelProto) -> list[TensorProto]:
    return [t for t in m.graph.initializer if t.data_type == TensorProto.FLOAT] or list(
        m.graph.initializer
    )


def _pick_init(m: onnx.ModelProto, rng: random.Random) -> TensorProto:
    return rng.choice(list(m.graph.initializer))


# ---- initializers ------------------------------------------------------------------------------
def init_raw_long(m: onnx.ModelProto, rng: random.Random) -> str:
    t = _pick_init(m, rng)
    extra = rng.choice([1, 3, 4, len(t.raw_data) or 8, 4096])
    t.raw_data = t.raw_data + bytes(rng.randrange(256) for _ in range(extra))
    return f"{t.name}: raw_data {extra} bytes too long"


def init_raw_short(m: onnx.ModelProto, rng: random.Random) -> str:
    t = _pick_init(m, rng)
    n = rng.choice([0, 1, len(t.raw_data) // 2, max(0, len(t.raw_data) - 1)])
    t.raw_data = t.raw_data[:n]
    return f"{t.name}: raw_data cut to {n} bytes"


def init_wrong_dims(m: onnx.ModelProto, rng: random.Random) -> str:
    t = _pick_init(m, rng)
    dims = list(t.dims)
    how = rng.choice(["append1", "drop", "grow", "swap", "scalar"])
    if how == "append1":
        dims.append(1)
    elif how == "drop" and dims:
        dims.pop(rng.randrange(len(dims)))
    elif how == "grow" and dims:
        dims[rng.randrange(len(dims))] += rng.choice([1, 2])
    elif how == "swap" and len(dims) > 1:
        dims = dims[::-1]
    else:
        dims = []
    del t.dims[:]
    t.dims.extend(dims)
    return f"{t.name}: dims -> {dims} ({how})"


def init_negative_dims(m: onnx.ModelProto, rng: random.Random) -> str:
    t = _pick_init(m, rng)
    if not t.dims:
        t.dims.append(1)
    k = rng.randrange(len(t.dims))
    t.dims[k] = rng.choice([-1, -2, -(2**31), -(2**63)])
    return f"{t.name}: dims[{k}] = {t.dims[k]}"


def init_huge_dims(m: onnx.ModelProto, rng: random.Random) -> str:
    t = _pick_init(m, rng)
    dims = rng.choice(
        [
            [2**20, 2**20],
            [2**31],
            [2**40],
            [2**62, 4],
            [2**63 - 1],
            [2**32, 2**32],
            [65536, 65536, 4],
        ]
    )
    del t.dims[:]
    t.dims.extend(dims)
    if rng.random() < 0.3:  # and no data at all: "zeros" promised for gigabytes
        t.raw_data = b""
    return f"{t.name}: dims -> {dims} ({len(t.raw_data)} bytes of data)"


def init_wrong_dtype(m: onnx.ModelProto, rng: random.Random) -> str:
    t = _pick_init(m, rng)
    t.data_type = rng.choice(
        ODD_DTYPES
        + [
            TensorProto.INT64,
            TensorProto.INT8,
            TensorProto.BOOL,
            TensorProto.INT4,
            TensorProto.FLOAT16,
        ]
    )
    return f"{t.name}: data_type -> {t.data_type}"


def init_data_fields(m: onnx.ModelProto, rng: random.Random) -> str:
    t = rng.choice(_float_inits(m))
    arr = numpy_helper.to_array(t).astype(np.float64).ravel()
    how = rng.choice(["both", "float_short", "int64_for_float", "string_data", "external_flag"])
    if how == "both":
        t.float_data.extend(arr.astype(np.float32).tolist())
    elif how == "float_short":
        t.raw_data = b""
        t.float_data.extend(arr[: max(0, arr.size - 1)].astype(np.float32).tolist())
    elif how == "int64_for_float":
        t.raw_data = b""
        t.int64_data.extend([1] * arr.size)
    elif how == "string_data":
        t.raw_data = b""
        t.string_data.extend([b"x"] * arr.size)
    else:
        t.data_location = TensorProto.EXTERNAL
    return f"{t.name}: data fields {how}"


def init_duplicate(m: onnx.ModelProto, rng: random.Random) -> str:
    t = _pick_init(m, rng)
    dup = m.graph.initializer.add()
    dup.CopyFrom(t)
    if rng.random() < 0.5:
        dup.dims.append(2)
    return f"{t.name}: initializer listed twice"


# ---- dims and dtypes of inputs, outputs, value_info ----------------------------------------------
def _value_infos(m: onnx.ModelProto, rng: random.Random) -> onnx.ValueInfoProto:
    g = m.graph
    if rng.random() < 0.3 and g.node:  # a value_info for an intermediate value
        name = rng.choice([o for n in g.node for o in n.output if o] or [g.output[0].name])
        vi = g.value_info.add()
        vi.CopyFrom(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 2, 3]))
        return vi
    return rng.choice(list(g.input) + list(g.output))


def dims_odd(m: onnx.ModelProto, rng: random.Random) -> str:
    vi = _value_infos(m, rng)
    shape = vi.type.tensor_type.shape
    how = rng.choice(
        ["negative", "zero", "huge", "rank_up", "rank_down", "param", "no_shape", "rank_9"]
    )
    if how in ("negative", "zero", "huge") and shape.dim:
        d = shape.dim[rng.randrange(len(shape.dim))]
        d.dim_value = {"negative": rng.choice([-1, -7]), "zero": 0, "huge": rng.choice(HUGE)}[how]
    elif how == "rank_up":
        shape.dim.add().dim_value = rng.choice([1, 3])
    elif how == "rank_down" and shape.dim:
        del shape.dim[-1]
    elif how == "param" and shape.dim:
        shape.dim[0].dim_param = rng.choice(["N", "", "batch size", "?" * 300])
    elif how == "rank_9":
        for _ in range(9):
            shape.dim.add().dim_value = 1
    else:
        vi.type.tensor_type.ClearField("shape")
    return f"{vi.name}: shape {how} -> {[d.dim_value or d.dim_param for d in shape.dim][:10]}"


def dtype_odd(m: onnx.ModelProto, rng: random.Random) -> str:
    vi = _value_infos(m, rng)
    how = rng.choice(["enum", "enum", "sequence", "map", "none"])
    if how == "enum":
        vi.type.tensor_type.elem_type = rng.choice(ODD_DTYPES)
        return f"{vi.name}: elem_type -> {vi.type.tensor_type.elem_type}"
    if how == "sequence":
        vi.type.CopyFrom(helper.make_sequence_type_proto(vi.type))
    elif how == "map":
        vi.type.CopyFrom(helper.make_map_type_proto(TensorProto.INT64, vi.type))
    else:
        vi.ClearField("type")
    return f"{vi.name}: type -> {how}"


# ---- attributes --------------------------------------------------------------------------------
_RANGE: dict[str, dict[str, list]] = {
    "Conv": {
        "strides": [[-1, 1], [0, 0], [2**31, 1]],
        "kernel_shape": [[0, 0], [3, 300], [-3, 3]],
        "pads": [[-1, -1, -1, -1], [2**31, 0, 0, 0], [99, 99, 99, 99], [1, 1]],
        "dilations": [[0, 1], [-1, -1], [2**40, 1]],
        "group": [0, -1, 3, 2**40],
        "auto_pad": [b"BOGUS", b"SAME_UPPER", b"VALID"],
    },
    "MaxPool": {
        "kernel_shape": [[0, 0], [9, 9], [-2, 2], [2]],
        "strides": [[0, 1], [-2, 2]],
        "pads": [[5, 5, 5, 5], [-1, 0, 0, 0]],
        "ceil_mode": [5, -1, 1],
        "storage_order": [1, 7],
        "dilations": [[0, 0], [3, 3]],
    },
    "Softmax": {"axis": [99, -99, 2**62, 0]},
    "Transpose": {"perm": [[0, 0, 1], [0, 1], [0, 1, 5], [2, 1, 0, 3], [-1, 0, 1]]},
    "Concat": {"axis": [5, -9, 2**40, 0]},
    "Gather": {"axis": [3, -4, 2**40, 0]},
    "GRU": {
        "hidden_size": [0, -1, 2**31, 5],
        "direction": [b"sideways", b"reverse", b"bidirectional"],
        "activations": [[b"Bogus", b"Tanh"], [b"Relu", b"Relu"]],
        "linear_before_reset": [7, -1],
        "clip": [-1.0, float("nan"), 0.0],
    },
    "Resize": {
        "mode": [b"bogus", b"cubic", b"linear"],
        "coordinate_transformation_mode": [b"x"],
        "nearest_mode": [b"bogus"],
        "cubic_coeff_a": [float("nan")],
        "antialias": [5],
        "axes": [[9], [0, 0]],
        "exclude_outside": [3],
    },
    "QuantizeLinear": {"axis": [9, -9], "saturate": [5]},
    "DequantizeLinear": {"axis": [9, -9]},
    "Reshape": {"allowzero": [1, 5, -1]},
}


def attr_out_of_range(m: onnx.ModelProto, rng: random.Random) -> str:
    cands = [n for n in m.graph.node if n.op_type in _RANGE]
    if not cands:
        n = rng.choice(list(m.graph.node))
        n.attribute.append(helper.make_attribute("bogus_attr", rng.choice(ODD_INTS)))
        return f"{n.name or n.op_type}: unknown attribute bogus_attr"
    n = rng.choice(cands)
    key = rng.choice(sorted(_RANGE[n.op_type]))
    value = rng.choice(_RANGE[n.op_type][key])
    for a in list(n.attribute):
        if a.name == key:
            n.attribute.remove(a)
    n.attribute.append(helper.make_attribute(key, value))
    return f"{n.name or n.op_type}.{key} = {value!r}"[:160]


def attr_wrong_type(m: onnx.ModelProto, rng: random.Random) -> str:
    nodes = [n for n in m.graph.node if n.attribute]
    if not nodes:
        return attr_out_of_range(m, rng)
    n = rng.choice(nodes)
    a = rng.choice(list(n.attribute))
    how = rng.choice(["float", "string", "ints", "tensor", "graph", "type_only", "floats"])
    name = a.name
    if how == "type_only":  # the type field says one thing, the data another
        a.type = rng.choice(
            [
                AttributeProto.FLOAT,
                AttributeProto.TENSOR,
                AttributeProto.STRINGS,
                AttributeProto.GRAPH,
                0,
                AttributeProto.SPARSE_TENSOR,
            ]
        )
        return f"{n.name}.{name}: type field -> {a.type}, data unchanged"
    value: object = {
        "float": 1.5,
        "string": b"three",
        "ints": [1, 2, 3],
        "floats": [0.5, float("inf")],
        "tensor": numpy_helper.from_array(np.array([1], np.int64)),
        "graph": helper.make_graph([], "g", [], []),
    }[how]
    n.attribute.remove(a)
    n.attribute.append(helper.make_attribute(name, value))
    return f"{n.name}.{name}: -> {how}"


def attr_missing(m: onnx.ModelProto, rng: random.Random) -> str:
    nodes = [n for n in m.graph.node if n.attribute]
    if not nodes:
        return attr_out_of_range(m, rng)
    n = rng.choice(nodes)
    a = rng.choice(list(n.attribute))
    n.attribute.remove(a)
    if rng.random() < 0.3:  # and an attribute twice
        dup = rng.choice(list(n.attribute)) if n.attribute else None
        if dup is not None:
            n.attribute.append(dup)
    return f"{n.name}: attribute {a.name} removed"


# ---- opsets and IR version ---------------------------------------------------------------------
def opset_odd(m: onnx.ModelProto, rng: random.Random) -> str:
    how = rng.choice(["duplicate", "absurd", "missing", "unknown_domain", "ir_version", "old"])
    if how == "duplicate":
        m.opset_import.add().CopyFrom(helper.make_opsetid("", rng.choice([13, 17, 18, 1])))
    elif how == "absurd":
        m.opset_import[0].version = rng.choice([0, 1, 5, 99999, -1, 2**62])
    elif how == "missing":
        del m.opset_import[0]
    elif how == "unknown_domain":
        m.graph.node[0].domain = rng.choice(["com.evil", "x" * 300, "ai.onnx.ml\n"])
        if rng.random() < 0.5:
            m.opset_import.add().CopyFrom(helper.make_opsetid(m.graph.node[0].domain, 1))
    elif how == "ir_version":
        m.ir_version = rng.choice([0, 1, 3, 99, -1, 2**40])
    else:
        m.opset_import[0].version = rng.choice([7, 9, 11])
    return f"{how}: opsets {[(o.domain[:20], o.version) for o in m.opset_import]} ir {m.ir_version}"


MODEL_MUTATIONS: dict[str, tuple[Mutator, tuple[str, ...] | None]] = {
    "init.raw_long": (init_raw_long, None),
    "init.raw_short": (init_raw_short, None),
    "init.wrong_dims": (init_wrong_dims, None),
    "init.negative_dims": (init_negative_dims, None),
    "init.huge_dims": (init_huge_dims, None),
    "init.wrong_dtype": (init_wrong_dtype, None),
    "init.data_fields": (init_data_fields, None),
    "init.duplicate": (init_duplicate, None),
    "dims.odd": (dims_odd, None),
    "dtype.odd": (dtype_odd, None),
    "attr.out_of_range": (attr_out_of_range, None),
    "attr.wrong_type": (attr_wrong_type, None),
    "attr.missing": (attr_missing, None),
    "graph.structure": (graph_structure, None),
    "graph.long_chain": (graph_long_chain, ("matmul_softmax", "gather", "local_function")),
    "graph.subgraph": (graph_subgraph, None),
    "graph.constant": (graph_constant, None),
    "attr.valid": (
        attr_valid,
        (
            "conv_relu_pool",
            "matmul_softmax",
            "reshape_transpose_concat",
            "qdq_conv",
            "gru",
            "gather",
            "resize",
        ),
    ),
    "opset.odd": (opset_odd, None),
    "nan.weights": (nan_weights, None),
    "nan.shape_operands": (shape_operands, ("reshape_transpose_concat", "resize", "gather")),
    "quant.params": (quant_params, ("qdq_conv",)),
}

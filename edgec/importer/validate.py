"""Checks on model data before edgec trusts it (issue 14, "hostile input").

Everything in an ONNX file is attacker-controlled: names, tensor headers, opset imports,
shapes. These checks run before edgec allocates, reshapes or prints anything derived from
them, so a malformed model ends in one ModelError naming the tensor or node, never in a
ValueError from numpy or a multi-gigabyte allocation. The limits are far above what an edge
model needs (the largest ONNX backend test has rank 7; a 2 GiB tensor would not fit a phone)
and far below what would exhaust the build machine.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper

from edgec.errors import ModelError

MAX_RANK = 8
MAX_DIM = 2**31 - 1
MAX_TENSOR_BYTES = 2**31  # one tensor (weight or inferred value)
MAX_TOTAL_BYTES = 16 * 2**30  # all weights, or all values of the graph together
MAX_NAME_SHOWN = 80
MAX_NODES = 1_000_000  # nodes of the main graph (after inlining); edge models have far fewer
DEFAULT_DOMAINS = ("", "ai.onnx")

# Sub-byte element types are packed: bits per element in raw_data and int32_data.
_PACKED_BITS = {TensorProto.INT4: 4, TensorProto.UINT4: 4, TensorProto.FLOAT4E2M1: 4,
                TensorProto.INT2: 2, TensorProto.UINT2: 2,
                TensorProto.FLOAT6E2M3: 6, TensorProto.FLOAT6E3M2: 6}
_PACKED_INT32_ONE_PER_ELEMENT = {TensorProto.FLOAT6E2M3, TensorProto.FLOAT6E3M2}
# Types stored one value per int32_data entry, with the range that entry may hold: onnx's
# numpy_helper casts silently (300 as uint8 becomes 44), so out-of-range values are refused.
# 16-bit floats and float8 are bit patterns; both signed and unsigned spellings are accepted.
_INT32_RANGES = {TensorProto.INT8: (-128, 127), TensorProto.UINT8: (0, 255),
                 TensorProto.INT16: (-32768, 32767), TensorProto.UINT16: (0, 65535),
                 TensorProto.BOOL: (0, 1), TensorProto.FLOAT16: (-32768, 65535),
                 TensorProto.BFLOAT16: (-32768, 65535), TensorProto.FLOAT8E4M3FN: (-128, 255),
                 TensorProto.FLOAT8E4M3FNUZ: (-128, 255), TensorProto.FLOAT8E5M2: (-128, 255),
                 TensorProto.FLOAT8E5M2FNUZ: (-128, 255), TensorProto.FLOAT8E8M0: (-128, 255),
                 TensorProto.INT4: (-128, 255), TensorProto.UINT4: (-128, 255),
                 TensorProto.FLOAT4E2M1: (-128, 255), TensorProto.INT2: (-128, 255),
                 TensorProto.UINT2: (-128, 255)}


# ---- names in messages -------------------------------------------------------------------------
def show(name: object) -> str:
    """A model-supplied name for a message: quoted and escaped by repr (a newline cannot forge
    a second line) and cut to MAX_NAME_SHOWN characters (a 100 kB name cannot flood a log)."""
    if not isinstance(name, str):
        text = repr(name)
        return text if len(text) <= MAX_NAME_SHOWN else text[:MAX_NAME_SHOWN] + "..."
    if len(name) > MAX_NAME_SHOWN:
        return repr(name[:MAX_NAME_SHOWN]) + "..."
    return repr(name)


def node_name(node: onnx.NodeProto) -> str:
    """The node's name (or first output when unnamed), shown safely."""
    return show(node.name or (node.output[0] if node.output else ""))


def where(node: onnx.NodeProto) -> str:
    """'Conv node 'conv1'' for messages; op types are model data too."""
    op = node.op_type
    op = op if isinstance(op, str) and op.isidentifier() and len(op) <= 64 else show(op)
    return f"{op} node {node_name(node)}"


def clean_message(text: object, limit: int = 300) -> str:
    """The first line of a message from onnx/numpy, control characters escaped and cut: those
    messages quote model names verbatim."""
    lines = str(text).strip().splitlines()
    line = lines[0] if lines else ""
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)
    return line if len(line) <= limit else line[:limit] + "..."


# ---- user input shapes -------------------------------------------------------------------------
def _is_int(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def check_input_shapes(input_shapes: object) -> dict[str, list[int]]:
    """`input_shapes` (Python API or --input-shape) as {name: [dims]}; every dim >= 1."""
    if input_shapes is None:
        return {}
    expect = "expected a mapping of input name -> list of positive integer dims"
    if not isinstance(input_shapes, Mapping):
        raise ModelError(f"input_shapes must be a mapping, not of type "
                         f"{type(input_shapes).__name__}; {expect}")
    out: dict[str, list[int]] = {}
    for name, dims in input_shapes.items():
        if not isinstance(name, str):
            raise ModelError(f"input_shapes: key {show(name)} is of type {type(name).__name__}, "
                             f"not an input name (str); {expect}")
        if isinstance(dims, (str, bytes)) or not isinstance(dims, (list, tuple, np.ndarray)):
            raise ModelError(f"input_shapes[{show(name)}] is of type {type(dims).__name__}; "
                             f"{expect}")
        if isinstance(dims, np.ndarray) and dims.ndim != 1:
            raise ModelError(f"input_shapes[{show(name)}] is an array of shape {list(dims.shape)}; "
                             f"{expect}")
        dims = list(dims)
        if len(dims) > MAX_RANK:
            raise ModelError(f"input_shapes[{show(name)}] has rank {len(dims)}; at most {MAX_RANK} "
                             "dims are supported")
        for d in dims:
            if not _is_int(d):
                raise ModelError(f"input_shapes[{show(name)}]: dim {show(d)} is of type "
                                 f"{type(d).__name__}; {expect}")
            if not 1 <= int(d) <= MAX_DIM:
                raise ModelError(f"input_shapes[{show(name)}]: dim {int(d)} is out of range "
                                 f"(expected 1 to {MAX_DIM})")
        out[name] = [int(d) for d in dims]
    return out


# ---- model header ------------------------------------------------------------------------------
def check_header(model: onnx.ModelProto) -> None:
    """ir_version and opset imports: one entry per domain, sane versions."""
    if not 1 <= model.ir_version <= onnx.IR_VERSION:
        raise ModelError(f"ir_version {model.ir_version} is not a valid ONNX IR version "
                         f"(expected 1 to {onnx.IR_VERSION})")
    _check_opsets(model.opset_import, "the model")
    for f in model.functions:
        _check_opsets(f.opset_import, f"local function {show(f.name)}")


def _check_opsets(imports: Iterable[onnx.OperatorSetIdProto], owner: str) -> None:
    seen: dict[str, int] = {}
    for imp in imports:
        domain = "" if imp.domain in DEFAULT_DOMAINS else imp.domain
        if domain in seen:
            raise ModelError(f"{owner} imports domain {show(imp.domain or 'ai.onnx')} twice "
                             f"(versions {seen[domain]} and {imp.version}); expected one opset "
                             "import per domain")
        if not (1 if domain == "" else 0) <= imp.version <= 10_000:
            raise ModelError(f"{owner} imports domain {show(imp.domain or 'ai.onnx')} at version "
                             f"{imp.version}; expected an opset version from 1 to 10000")
        seen[domain] = imp.version


# ---- tensors -----------------------------------------------------------------------------------
def iter_tensors(model: onnx.ModelProto) -> Iterator[TensorProto]:
    """Every TensorProto of the model: initializers, sparse initializers' parts, node attributes,
    in the main graph, in subgraphs and in local functions. Iterative: nesting depth is data."""
    stack: list[onnx.GraphProto | onnx.FunctionProto] = [model.graph, *model.functions]
    while stack:
        g = stack.pop()
        if isinstance(g, onnx.GraphProto):
            yield from g.initializer
            for sp in g.sparse_initializer:
                yield sp.values
                yield sp.indices
        for node in g.node:
            for a in node.attribute:
                if a.HasField("t"):
                    yield a.t
                yield from a.tensors
                for sp in [a.sparse_tensor] if a.HasField("sparse_tensor") else []:
                    yield sp.values
                    yield sp.indices
                for sp in a.sparse_tensors:
                    yield sp.values
                    yield sp.indices
                if a.HasField("g"):
                    stack.append(a.g)
                stack.extend(a.graphs)


def check_dims(dims: Iterable[int], what: str) -> int:
    """Rank and per-dim limits; returns the element count (a Python int, no overflow)."""
    dims = list(dims)
    if len(dims) > MAX_RANK:
        raise ModelError(f"{what} has rank {len(dims)}; at most {MAX_RANK} dims are supported")
    for d in dims:
        if not 0 <= d <= MAX_DIM:
            raise ModelError(f"{what} has dim {d} in shape {dims[:MAX_RANK]}; expected 0 to "
                             f"{MAX_DIM}")
    return math.prod(dims)


def tensor_nbytes(t: TensorProto) -> int:
    """Bytes of the tensor's data (raw layout) from its header, after checking the header:
    a known element type, sane dims, at most MAX_TENSOR_BYTES."""
    what = f"tensor {show(t.name)}"
    if t.HasField("segment"):
        raise ModelError(f"{what} is segmented; segmented tensors are not supported")
    try:
        if t.data_type == TensorProto.UNDEFINED:
            raise KeyError(t.data_type)
        itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
    except (KeyError, ValueError, TypeError):
        raise ModelError(f"{what} has element type {t.data_type}, which is not an ONNX tensor "
                         "type") from None
    count = check_dims(t.dims, what)
    if t.data_type in _PACKED_BITS:
        nbytes = -(-count * _PACKED_BITS[t.data_type] // 8)
    elif t.data_type == TensorProto.STRING:
        nbytes = count * 8  # a bound for the limit only; strings have no raw layout
    else:
        nbytes = count * itemsize
    if nbytes > MAX_TENSOR_BYTES:
        raise ModelError(f"{what} of shape {list(t.dims)} needs {nbytes} bytes; at most "
                         f"{MAX_TENSOR_BYTES} bytes per tensor are supported")
    return nbytes


def _typed_count(t: TensorProto, count: int) -> tuple[str, int]:
    """(field, number of entries) the typed storage of `count` elements must hold."""
    field = helper.tensor_dtype_to_field(t.data_type)
    if t.data_type in _PACKED_BITS and t.data_type not in _PACKED_INT32_ONE_PER_ELEMENT:
        return field, -(-count * _PACKED_BITS[t.data_type] // 8)
    if t.data_type in (TensorProto.COMPLEX64, TensorProto.COMPLEX128):
        return field, 2 * count
    return field, count


def check_tensor(t: TensorProto) -> int:
    """Header and data length of one in-memory tensor; returns its byte size."""
    nbytes = tensor_nbytes(t)
    what = f"tensor {show(t.name)}"
    if t.data_location == TensorProto.EXTERNAL:
        raise ModelError(f"{what} still refers to external data; load the model from its file path")
    count = math.prod(t.dims)
    if t.HasField("raw_data"):
        if t.data_type == TensorProto.STRING:
            raise ModelError(f"{what}: string tensors cannot use raw_data")
        got = len(t.raw_data)
        if got != nbytes:
            raise ModelError(f"{what} of shape {list(t.dims)} has {got} bytes of raw_data; "
                             f"expected {nbytes}")
        return nbytes
    field, want = _typed_count(t, count)
    data = getattr(t, field)
    if len(data) != want:
        raise ModelError(f"{what} of shape {list(t.dims)} has {len(data)} values in {field}; "
                         f"expected {want}")
    if t.data_type in _INT32_RANGES and want:
        lo, hi = _INT32_RANGES[t.data_type]
        vals = np.asarray(data, dtype=np.int64)
        bad = vals[(vals < lo) | (vals > hi)]
        if bad.size:
            name = helper.tensor_dtype_to_np_dtype(t.data_type)
            raise ModelError(f"{what}: value {int(bad[0])} in int32_data is out of range for "
                             f"{np.dtype(name).name} ({lo} to {hi})")
    if t.data_type == TensorProto.UINT32 and want and max(data) > 2**32 - 1:
        raise ModelError(f"{what}: a value in uint64_data is out of range for uint32")
    return nbytes


def check_tensors(model: onnx.ModelProto) -> None:
    """All tensors of the model (see iter_tensors), and their total size."""
    total = 0
    for t in iter_tensors(model):
        total += check_tensor(t)
    if total > MAX_TOTAL_BYTES:
        raise ModelError(f"the model's tensors hold {total} bytes; at most {MAX_TOTAL_BYTES} "
                         "are supported")


# ---- graph structure ---------------------------------------------------------------------------
def check_graph(graph: onnx.GraphProto) -> None:
    """Names (non-empty, single assignment), topological order, defined inputs and outputs
    of the main graph, with messages clearer than those of shape inference. Subgraphs may
    read outer names; onnx's checker and shape inference look at them."""
    if len(graph.node) > MAX_NODES:
        raise ModelError(f"the graph has {len(graph.node)} nodes; at most {MAX_NODES} are "
                         "supported")
    defined: set[str] = set()
    inits = set()
    for t in graph.initializer:
        if not t.name:
            raise ModelError("an initializer has an empty name")
        if t.name in inits:
            raise ModelError(f"initializer {show(t.name)} is defined twice")
        inits.add(t.name)
    for sp in graph.sparse_initializer:
        if not sp.values.name or sp.values.name in inits:
            raise ModelError(f"sparse initializer {show(sp.values.name)} has an empty or "
                             "duplicate name")
        inits.add(sp.values.name)
    for vi in list(graph.input) + list(graph.output):
        kind = vi.type.WhichOneof("value")
        if kind not in (None, "tensor_type"):  # no type at all: the checker says so
            what = kind.replace("_type", "")
            raise ModelError(f"graph input/output {show(vi.name)} is a {what}; edgec compiles "
                             "tensor inputs and outputs only")
    for vi in graph.input:
        if not vi.name:
            raise ModelError("a graph input has an empty name")
        if vi.name in defined:
            raise ModelError(f"graph input {show(vi.name)} is listed twice")
        defined.add(vi.name)
    defined |= inits
    for node in graph.node:
        _check_node_attributes(node)
        for i in node.input:
            if i and i not in defined:
                raise ModelError(f"{where(node)} reads {show(i)}, which no graph input, "
                                 "initializer or earlier node defines (nodes must be in "
                                 "topological order)")
        for o in node.output:
            if not o:
                continue
            if o in defined:
                raise ModelError(f"{where(node)} writes {show(o)}, which is already defined; "
                                 "every value must be assigned once")
            defined.add(o)
    if not graph.output:
        raise ModelError("the graph has no outputs; a model must name at least one")
    outs: set[str] = set()
    for vi in graph.output:
        if not vi.name:
            raise ModelError("a graph output has an empty name")
        if vi.name in outs:
            raise ModelError(f"graph output {show(vi.name)} is listed twice")
        if vi.name not in defined:
            raise ModelError(f"graph output {show(vi.name)} is not produced by any node")
        outs.add(vi.name)


def _check_node_attributes(node: onnx.NodeProto) -> None:
    """Attribute values onnx's C++ shape inference does not survive (it segfaults on an axis
    of 2**31 and aborts on a Split whose num_outputs disagrees with its outputs). The sandbox
    (sandbox.py) catches such crashes too; these checks give the clearer message."""
    if node.domain not in DEFAULT_DOMAINS:
        return
    for a in node.attribute:
        if a.name == "axis" and a.type == onnx.AttributeProto.INT and abs(a.i) > 2 * MAX_RANK:
            raise ModelError(f"{where(node)}: axis {a.i} is out of range for a tensor of rank at "
                             f"most {MAX_RANK}")
        if a.name == "axes" and a.type == onnx.AttributeProto.INTS and \
                any(abs(v) > 2 * MAX_RANK for v in a.ints):
            raise ModelError(f"{where(node)}: axes {list(a.ints)[:MAX_RANK + 1]} are out of "
                             f"range for a tensor of rank at most {MAX_RANK}")
        if node.op_type == "Split" and a.name == "num_outputs" and a.i != len(node.output):
            raise ModelError(f"{where(node)}: num_outputs={a.i} but the node has "
                             f"{len(node.output)} outputs")


# ---- inferred values ---------------------------------------------------------------------------
def value_nbytes(name: str, dims: Iterable[int], dtype: np.dtype) -> int:
    count = check_dims(dims, f"value {show(name)}")
    nbytes = count * max(1, np.dtype(dtype).itemsize)
    if nbytes > MAX_TENSOR_BYTES:
        raise ModelError(f"value {show(name)} of shape {list(dims)} needs {nbytes} bytes; at most "
                         f"{MAX_TENSOR_BYTES} bytes per tensor are supported")
    return nbytes


def check_value_infos(infos: Iterable[onnx.ValueInfoProto]) -> None:
    """Shapes from shape inference: a negative or absurd dim (a Conv kernel larger than its
    input, a Reshape to 2**40) is refused before folding allocates it or a header prints it."""
    total = 0
    for vi in infos:
        if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
            continue
        tt = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if len(dims) > MAX_RANK:
            raise ModelError(f"value {show(vi.name)} has rank {len(dims)}; at most {MAX_RANK} dims "
                             "are supported")
        check_dims([d for d in dims if d is not None], f"value {show(vi.name)}")
        if None in dims:
            continue
        try:
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type))
        except (KeyError, ValueError, TypeError):
            raise ModelError(f"value {show(vi.name)} has element type {tt.elem_type}, which is not "
                             "an ONNX tensor type") from None
        total += value_nbytes(vi.name, dims, dtype)
    if total > MAX_TOTAL_BYTES:
        raise ModelError(f"the model's values need {total} bytes together; at most "
                         f"{MAX_TOTAL_BYTES} are supported")


def check_ir_values(values: Mapping[str, object]) -> None:
    """The IR graph's values (edgec.ir.graph.Value): limits, and element types edgec can hold."""
    total = 0
    for name, v in values.items():
        dtype = np.dtype(v.dtype)  # type: ignore[attr-defined]
        if dtype.kind in "OUSc":
            raise ModelError(f"value {show(name)} has element type {dtype.name}; string and "
                             "complex tensors are not supported")
        total += value_nbytes(name, v.shape, dtype)  # type: ignore[attr-defined]
    if total > MAX_TOTAL_BYTES:
        raise ModelError(f"the model's values need {total} bytes together; at most "
                         f"{MAX_TOTAL_BYTES} are supported")

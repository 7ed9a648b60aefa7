"""Reading a `.tflite` flatbuffer (subgraph 0) into plain Python values, through the schema
classes the `tflite` package generates from TFLite's schema.fbs (over `flatbuffers`).

A file is hostile input like an ONNX model (docs/hostile-input.md): the identifier, every
buffer and tensor index and every shape are checked here, and whatever the flatbuffers
accessors raise on a truncated or corrupted file becomes one ModelError line."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from edgec.errors import ModelError

IDENTIFIER = b"TFL3"

# tflite TensorType -> numpy dtype (schema.fbs order)
DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_, 7: np.int16,
          9: np.int8, 10: np.float64, 12: np.uint64, 15: np.uint32, 16: np.uint16}
TYPE_NAMES = {5: "STRING", 8: "COMPLEX64", 11: "COMPLEX128", 13: "RESOURCE", 14: "VARIANT", 17: "INT4"}


@dataclass
class Quant:
    scale: np.ndarray
    zero_point: np.ndarray
    axis: int


@dataclass
class Tensor:
    index: int
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    data: np.ndarray | None = None  # constant (from a buffer)
    quant: Quant | None = None
    sparsity: object | None = None  # tflite.SparsityParameters of a sparse constant (DENSIFY's input)


@dataclass
class Op:
    name: str  # builtin name ("CONV_2D") or "CUSTOM:<code>"
    inputs: list[int]  # -1: an absent optional input
    outputs: list[int]
    options: dict[str, object] = field(default_factory=dict)
    custom_options: bytes = b""


@dataclass
class TflGraph:
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    names: dict[int, str]  # I/O tensor index -> name (the signature's names when there is one)


def is_tflite(head: bytes) -> bool:
    return len(head) >= 8 and head[4:8] == IDENTIFIER


def read_tflite(buf: bytes, what: str = "the model") -> TflGraph:
    if not is_tflite(buf):
        raise ModelError(f"{what} is not a TFLite model (no 'TFL3' file identifier)")
    try:
        return _read(buf)
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - flatbuffers raises what struct/numpy raise on a bad offset
        raise ModelError(f"{what} is not a readable TFLite model: it is truncated or corrupted "
                         f"({type(exc).__name__})") from None


def _builtin_names() -> dict[int, str]:
    from tflite.BuiltinOperator import BuiltinOperator

    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


def _option_classes() -> dict[int, str]:
    from tflite.BuiltinOptions import BuiltinOptions

    return {v: k for k, v in vars(BuiltinOptions).items() if not k.startswith("_")}


def _options(op: object) -> dict[str, object]:
    """The builtin options table as {Field: value}: every scalar getter of the generated class,
    and `<Field>AsNumpy` for vectors."""
    import tflite

    kind = op.BuiltinOptionsType()  # type: ignore[attr-defined]
    table = op.BuiltinOptions()  # type: ignore[attr-defined]
    name = _option_classes().get(kind)
    if not kind or table is None or name is None or not hasattr(tflite, name):
        return {}
    cls = getattr(tflite, name)
    o = cls()
    o.Init(table.Bytes, table.Pos)
    out: dict[str, object] = {}
    for attr in vars(cls):
        if attr.startswith(("_", "GetRootAs", "Init")) or attr.endswith(("Length", "IsNone", "BufferHasIdentifier")):
            continue
        if attr.endswith("AsNumpy"):
            v = getattr(o, attr)()
            out[attr[:-7]] = np.asarray(v) if not isinstance(v, int) else np.zeros(0, np.int32)
        elif attr + "AsNumpy" not in vars(cls):
            try:
                out[attr] = getattr(o, attr)()
            except TypeError:  # an indexed accessor (the vector itself is read AsNumpy)
                continue
    return out


def _buffer(model: object, index: int, n_buffers: int, buf_len: int, buf: bytes) -> bytes:
    if not 0 <= index < n_buffers:
        raise ModelError(f"a tensor refers to buffer {index}, but the model has {n_buffers}")
    b = model.Buffers(index)  # type: ignore[attr-defined]
    if b.Offset() > 1:  # large models (> 2 GB flatbuffer limit) keep data after the flatbuffer
        off, size = b.Offset(), b.Size()
        if off + size > buf_len:
            raise ModelError(f"buffer {index} lies past the end of the file")
        return buf[off:off + size]
    if b.DataLength() == 0:
        return b""
    return b.DataAsNumpy().tobytes()


def _read(buf: bytes) -> TflGraph:
    import tflite

    model = tflite.Model.GetRootAsModel(buf, 0)
    if model.SubgraphsLength() < 1:
        raise ModelError("the TFLite model has no subgraph")
    sg = model.Subgraphs(0)
    builtin = _builtin_names()
    n_buffers = model.BuffersLength()
    tensors = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        ttype = t.Type()
        if ttype not in DTYPES:
            raise ModelError(f"tensor {t.Name().decode(errors='replace')!r} has type "
                             f"{TYPE_NAMES.get(ttype, ttype)}, which edgec does not support")
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        if any(d < 0 for d in shape):
            raise ModelError(f"tensor {t.Name().decode(errors='replace')!r} has a dynamic shape {list(shape)}")
        dtype = np.dtype(DTYPES[ttype])
        raw = _buffer(model, t.Buffer(), n_buffers, len(buf), buf) if t.Buffer() else b""
        data = None
        sparsity = t.Sparsity()
        if raw:
            arr = np.frombuffer(raw, dtype)
            if sparsity is None:
                if arr.size != int(np.prod(shape, dtype=np.int64)):
                    raise ModelError(f"tensor {t.Name().decode(errors='replace')!r}: buffer holds {arr.size} "
                                     f"values, its shape {list(shape)} needs {int(np.prod(shape))}")
                arr = arr.reshape(shape)
            data = arr.copy()
        q = t.Quantization()
        quant = None
        if q is not None and q.ScaleLength() > 0:
            zp = q.ZeroPointAsNumpy() if q.ZeroPointLength() else np.zeros(q.ScaleLength(), np.int64)
            quant = Quant(np.asarray(q.ScaleAsNumpy(), np.float32), np.asarray(zp, np.int64), q.QuantizedDimension())
        tensors.append(Tensor(i, t.Name().decode(errors="replace"), dtype, shape, data, quant, sparsity))

    def index(v: int, what: str) -> int:
        if not -1 <= v < len(tensors):
            raise ModelError(f"{what} refers to tensor {v}, but subgraph 0 has {len(tensors)}")
        return int(v)

    ops = []
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        if not 0 <= op.OpcodeIndex() < model.OperatorCodesLength():
            raise ModelError(f"operator {k} has opcode index {op.OpcodeIndex()} out of range")
        code = model.OperatorCodes(op.OpcodeIndex())
        bc = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = builtin.get(bc, f"BUILTIN_{bc}")
        if name == "CUSTOM":
            name = "CUSTOM:" + (code.CustomCode() or b"").decode(errors="replace")
        ins = [index(int(v), f"operator {k} ({name})") for v in (op.InputsAsNumpy() if op.InputsLength() else [])]
        outs = [index(int(v), f"operator {k} ({name})") for v in (op.OutputsAsNumpy() if op.OutputsLength() else [])]
        custom = op.CustomOptionsAsNumpy().tobytes() if op.CustomOptionsLength() else b""
        ops.append(Op(name, ins, outs, _options(op), custom))

    inputs = [index(int(v), "the subgraph's inputs") for v in sg.InputsAsNumpy()] if sg.InputsLength() else []
    outputs = [index(int(v), "the subgraph's outputs") for v in sg.OutputsAsNumpy()] if sg.OutputsLength() else []
    if not outputs:
        raise ModelError("the TFLite model's subgraph 0 has no outputs")
    names = {i: tensors[i].name for i in inputs + outputs}
    for s in range(model.SignatureDefsLength()):  # a signature's names are what callers use
        sig = model.SignatureDefs(s)
        if sig.SubgraphIndex() != 0:
            continue
        for j in range(sig.InputsLength()):
            names[index(sig.Inputs(j).TensorIndex(), "a signature")] = sig.Inputs(j).Name().decode(errors="replace")
        for j in range(sig.OutputsLength()):
            names[index(sig.Outputs(j).TensorIndex(), "a signature")] = sig.Outputs(j).Name().decode(errors="replace")
    return TflGraph(tensors, ops, inputs, outputs, names)


def custom_ints(raw: bytes, n: int) -> list[int]:
    """The first `n` little-endian int32 of an op's raw custom options (MediaPipe's custom ops
    store a C struct there, e.g. TfLiteTransposeConvParams)."""
    if len(raw) < 4 * n:
        raise ModelError(f"custom options hold {len(raw)} bytes, {4 * n} expected")
    return list(struct.unpack(f"<{n}i", raw[:4 * n]))

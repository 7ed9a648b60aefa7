"""A small .tflite writer for the op tests, over the builder functions the `tflite` package
generates from TFLite's schema (one subgraph, builtin ops, constants in buffers). LiteRT runs
what it writes, so the tests compare edgec with LiteRT on ops mediapipe's models lack."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import flatbuffers
import numpy as np

TYPES = {np.dtype(np.float32): 0, np.dtype(np.float16): 1, np.dtype(np.int32): 2, np.dtype(np.uint8): 3,
         np.dtype(np.int64): 4, np.dtype(np.int8): 9}


@dataclass
class T:
    name: str
    shape: list[int]
    dtype: object = np.float32
    data: np.ndarray | None = None
    scale: list[float] | None = None
    zero_point: list[int] | None = None
    quant_axis: int = 0


@dataclass
class Op:
    code: str  # builtin name, e.g. "SOFTMAX"
    inputs: list[int]
    outputs: list[int]
    options: str = ""  # options table name, e.g. "SoftmaxOptions"
    fields: dict[str, object] = field(default_factory=dict)


def _mod(name: str):  # noqa: ANN202
    return importlib.import_module(f"tflite.{name}")


def _ints(b: flatbuffers.Builder, values: list[int]) -> int:
    return b.CreateNumpyVector(np.asarray(values, np.int32))


def _options(b: flatbuffers.Builder, op: Op) -> int:
    m = _mod(op.options)
    vectors = {k: _ints(b, v) for k, v in op.fields.items() if isinstance(v, (list, tuple))}
    getattr(m, f"{op.options}Start")(b)
    for k, v in op.fields.items():
        getattr(m, f"{op.options}Add{k}")(b, vectors.get(k, v))
    return getattr(m, f"{op.options}End")(b)


def _table_vector(b: flatbuffers.Builder, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for o in reversed(offsets):
        b.PrependUOffsetTRelative(o)
    return b.EndVector()


def write(tensors: list[T], ops: list[Op], inputs: list[int], outputs: list[int]) -> bytes:
    from tflite.BuiltinOperator import BuiltinOperator
    from tflite.BuiltinOptions import BuiltinOptions

    b = flatbuffers.Builder(1024)
    buf_m, ten_m, q_m = _mod("Buffer"), _mod("Tensor"), _mod("QuantizationParameters")
    buffers = []
    for data in [None] + [t.data for t in tensors]:
        vec = b.CreateNumpyVector(np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)) \
            if data is not None else None
        buf_m.BufferStart(b)
        if vec is not None:
            buf_m.BufferAddData(b, vec)
        buffers.append(buf_m.BufferEnd(b))
    tens = []
    for i, t in enumerate(tensors):
        name, shape = b.CreateString(t.name), _ints(b, t.shape)
        quant = None
        if t.scale is not None:
            sc = b.CreateNumpyVector(np.asarray(t.scale, np.float32))
            zp = b.CreateNumpyVector(np.asarray(t.zero_point or [0] * len(t.scale), np.int64))
            q_m.QuantizationParametersStart(b)
            q_m.QuantizationParametersAddScale(b, sc)
            q_m.QuantizationParametersAddZeroPoint(b, zp)
            q_m.QuantizationParametersAddQuantizedDimension(b, t.quant_axis)
            quant = q_m.QuantizationParametersEnd(b)
        ten_m.TensorStart(b)
        ten_m.TensorAddShape(b, shape)
        ten_m.TensorAddType(b, TYPES[np.dtype(t.dtype)])
        ten_m.TensorAddBuffer(b, i + 1 if t.data is not None else 0)
        ten_m.TensorAddName(b, name)
        if quant is not None:
            ten_m.TensorAddQuantization(b, quant)
        tens.append(ten_m.TensorEnd(b))
    codes = sorted({op.code for op in ops})
    code_m, op_m = _mod("OperatorCode"), _mod("Operator")
    code_offsets = []
    for c in codes:
        v = getattr(BuiltinOperator, c)
        code_m.OperatorCodeStart(b)
        code_m.OperatorCodeAddDeprecatedBuiltinCode(b, min(v, 127))
        code_m.OperatorCodeAddBuiltinCode(b, v)
        code_m.OperatorCodeAddVersion(b, 1)
        code_offsets.append(code_m.OperatorCodeEnd(b))
    op_offsets = []
    for op in ops:
        ins, outs = _ints(b, op.inputs), _ints(b, op.outputs)
        opts = _options(b, op) if op.options else None
        op_m.OperatorStart(b)
        op_m.OperatorAddOpcodeIndex(b, codes.index(op.code))
        op_m.OperatorAddInputs(b, ins)
        op_m.OperatorAddOutputs(b, outs)
        if opts is not None:
            op_m.OperatorAddBuiltinOptionsType(b, getattr(BuiltinOptions, op.options))
            op_m.OperatorAddBuiltinOptions(b, opts)
        op_offsets.append(op_m.OperatorEnd(b))
    sg_m, model_m = _mod("SubGraph"), _mod("Model")
    t_vec, o_vec = _table_vector(b, tens), _table_vector(b, op_offsets)
    i_vec, out_vec, sg_name = _ints(b, inputs), _ints(b, outputs), b.CreateString("main")
    sg_m.SubGraphStart(b)
    sg_m.SubGraphAddTensors(b, t_vec)
    sg_m.SubGraphAddInputs(b, i_vec)
    sg_m.SubGraphAddOutputs(b, out_vec)
    sg_m.SubGraphAddOperators(b, o_vec)
    sg_m.SubGraphAddName(b, sg_name)
    sg = sg_m.SubGraphEnd(b)
    codes_vec, sgs, bufs = _table_vector(b, code_offsets), _table_vector(b, [sg]), _table_vector(b, buffers)
    desc = b.CreateString("edgec test")
    model_m.ModelStart(b)
    model_m.ModelAddVersion(b, 3)
    model_m.ModelAddOperatorCodes(b, codes_vec)
    model_m.ModelAddSubgraphs(b, sgs)
    model_m.ModelAddDescription(b, desc)
    model_m.ModelAddBuffers(b, bufs)
    b.Finish(model_m.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())

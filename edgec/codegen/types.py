"""numpy dtype <-> LLVM type, and typed constants."""

from __future__ import annotations

import numpy as np
from llvmlite import ir

F32 = ir.FloatType()
F64 = ir.DoubleType()
F16 = ir.HalfType()
I1 = ir.IntType(1)
I8 = ir.IntType(8)
I16 = ir.IntType(16)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
VOID = ir.VoidType()
I8P = I8.as_pointer()

_TYPES: dict[str, ir.Type] = {
    "float32": F32, "float64": F64, "float16": F16, "int64": I64, "int32": I32, "int16": I16,
    "int8": I8, "uint8": I8, "uint16": I16, "uint32": I32, "uint64": I64, "bool": I8,
}


def llvm_type(dtype: np.dtype | str) -> ir.Type:
    name = np.dtype(dtype).name
    if name not in _TYPES:
        raise NotImplementedError(f"dtype {name} has no code generator")
    return _TYPES[name]


def is_float(dtype: np.dtype | str) -> bool:
    return np.issubdtype(np.dtype(dtype), np.floating)


def is_signed(dtype: np.dtype | str) -> bool:
    return np.issubdtype(np.dtype(dtype), np.signedinteger)


def const(dtype: np.dtype | str, value: float | int) -> ir.Constant:
    t = llvm_type(dtype)
    if is_float(dtype):
        return ir.Constant(t, float(value))
    return ir.Constant(t, int(value))

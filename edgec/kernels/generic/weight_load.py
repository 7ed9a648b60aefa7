"""Vector loads of packed weights stored as fp32, int8 (per-column scale applied by the caller
after the dot product) or fp16 (`--weights`, edgec/optimize/weight_quant.py): always returns
`<lanes x float>`. int8 widens with sext + sitofp (vpmovsxbd + vcvtdq2ps / sxtl + scvtf), fp16
with fpext (vcvtph2ps with F16C / fcvtl); LLVM folds the narrow load into the conversion."""

from __future__ import annotations

from llvmlite import ir

from edgec.codegen.types import F32


def load_weights(b: ir.IRBuilder, ptr: ir.Value, lanes: int) -> ir.Value:
    """`lanes` consecutive weights at `ptr` (typed pointer) as a float vector."""
    ety = ptr.type.pointee
    vty = ir.VectorType(ety, lanes)
    align = 4 if ety == F32 else 1 if isinstance(ety, ir.IntType) else 2
    v = b.load(b.bitcast(ptr, vty.as_pointer()), align=align)
    fty = ir.VectorType(F32, lanes)
    if ety == F32:
        return v
    if isinstance(ety, ir.IntType):
        return b.sitofp(v, fty)
    return b.fpext(v, fty)


def quantized(kc_attrs: dict) -> bool:
    """The node's weights are int8 with per-column scales."""
    return kc_attrs.get("weights") == "int8"

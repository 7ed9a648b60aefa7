"""AArch64 NEON intrinsics used by the int8 kernels (edgec/kernels/int8)."""

from __future__ import annotations

from llvmlite import ir

from edgec.codegen.types import I8, I32
from edgec.codegen.vector import intrinsic, vtype


def sdot4(b: ir.IRBuilder, xv: ir.Value, wv: ir.Value, lanes: int) -> ir.Value:
    """<4 x i32> words of s8 quads (xv) . s8 quads (wv) -> <4 x i32> (the dotprod extension's
    sdot; LLVM folds the caller's accumulator add into the instruction)."""
    if lanes != 4:
        raise ValueError("sdot4: the aarch64 path has 4 int32 lanes")
    t8, t32 = vtype(I8, 16), vtype(I32, 4)
    fn = intrinsic(b, "llvm.aarch64.neon.sdot.v4i32.v16i8", t32, [t32, t8, t8])
    return b.call(fn, [ir.Constant(t32, [0] * 4), b.bitcast(xv, t8), b.bitcast(wv, t8)])

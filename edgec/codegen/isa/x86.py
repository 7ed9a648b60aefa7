"""x86-64 AVX2 intrinsics used by the int8 kernels (edgec/kernels/int8)."""

from __future__ import annotations

from llvmlite import ir

from edgec.codegen.types import I8, I16, I32
from edgec.codegen.vector import intrinsic, vtype


def dot4_u8s8(b: ir.IRBuilder, xv: ir.Value, wv: ir.Value, lanes: int) -> ir.Value:
    """<8 x i32> words of u8 quads (xv) . s8 quads (wv) -> <8 x i32>: vpmaddubsw (u8 x s8 pairs
    summed to int16) + vpmaddwd by ones. Exact only if every |w| <= 64 (2 * 255 * 64 < 32768,
    nothing saturates); the passes that choose it check that."""
    if lanes != 8:
        raise ValueError("dot4_u8s8: the AVX2 path has 8 int32 lanes")
    t8, t16 = vtype(I8, 32), vtype(I16, 16)
    ubsw = intrinsic(b, "llvm.x86.avx2.pmadd.ub.sw", t16, [t8, t8])
    wd = intrinsic(b, "llvm.x86.avx2.pmadd.wd", vtype(I32, 8), [t16, t16])
    p16 = b.call(ubsw, [b.bitcast(xv, t8), b.bitcast(wv, t8)])
    return b.call(wd, [p16, ir.Constant(t16, [1] * 16)])


def dot4_vnni(b: ir.IRBuilder, xv: ir.Value, wv: ir.Value, lanes: int) -> ir.Value:
    """<8 x i32> words of u8 quads (xv) . s8 quads (wv) -> <8 x i32>: one vpdpbusd (AVX512-VNNI
    with VL, or AVX-VNNI). Exact for full-range int8 weights: the four products are summed in
    int32, nothing saturates. The accumulator operand is zero; the caller's add follows."""
    if lanes != 8:
        raise ValueError("dot4_vnni: the byte-quad kernels use 8 int32 lanes (ymm)")
    t = vtype(I32, 8)
    fn = intrinsic(b, "llvm.x86.avx512.vpdpbusd.256", t, [t, t, t])
    return b.call(fn, [ir.Constant(t, [0] * 8), xv, wv])


def dot4_x86(kind: str | None):  # noqa: ANN201 - a dot4 function
    """The byte-quad dot of a kernel's `dot` attribute: vpdpbusd for "vnni", else
    vpmaddubsw + vpmaddwd ("u8s8": weights within [-64, 64])."""
    return dot4_vnni if kind == "vnni" else dot4_u8s8


def pshufb(b: ir.IRBuilder, table: ir.Value, mask: ir.Value) -> ir.Value:
    """vpshufb: bytes of `table` picked by `mask`, within each 16-byte half (<32 x i8>)."""
    t = vtype(I8, 32)
    return b.call(intrinsic(b, "llvm.x86.avx2.pshuf.b", t, [t, t]), [table, mask])


def cvt_ps2dq(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    """vcvtps2dq: <8 x float> -> <8 x i32>, rounding to nearest even (the MXCSR default)."""
    return b.call(intrinsic(b, "llvm.x86.avx.cvt.ps2dq.256", vtype(I32, 8), [v.type]), [v])


def packssdw(b: ir.IRBuilder, lo: ir.Value, hi: ir.Value) -> ir.Value:
    """vpackssdw: two <8 x i32> -> <16 x i16> saturated, interleaved per 128-bit half."""
    return b.call(intrinsic(b, "llvm.x86.avx2.packssdw", vtype(I16, 16), [vtype(I32, 8)] * 2), [lo, hi])


def packs_bytes(b: ir.IRBuilder, lo: ir.Value, hi: ir.Value, signed: bool) -> ir.Value:
    """vpacksswb / vpackuswb: two <16 x i16> -> <32 x i8> saturated to int8 or uint8."""
    name = "llvm.x86.avx2.packsswb" if signed else "llvm.x86.avx2.packuswb"
    return b.call(intrinsic(b, name, vtype(I8, 32), [vtype(I16, 16)] * 2), [lo, hi])

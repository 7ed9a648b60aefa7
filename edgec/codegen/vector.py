"""Explicit SIMD helpers for hot kernels: typed vector loads/stores, broadcasts, strided loads
(deinterleave) and fused multiply-add. Vector width comes from the target profile (`TargetProfile.fp32_lanes`); nothing here
calls libc or libm (llvm.fmuladd becomes an FMA instruction or a mul+add, never a call)."""

from __future__ import annotations

from collections.abc import Iterator

from llvmlite import ir

from edgec.codegen.types import F16, F32, I32


def vtype(t: ir.Type, n: int) -> ir.VectorType:
    """<n x t>."""
    return ir.VectorType(t, n)


def splat(b: ir.IRBuilder, v: ir.Value, n: int) -> ir.Value:
    """<n x v.type> with every lane v (insertelement + zero-mask shuffle: LLVM's broadcast)."""
    ty = vtype(v.type, n)
    x = b.insert_element(ir.Constant(ty, ir.Undefined), v, ir.Constant(I32, 0))
    return b.shuffle_vector(x, ir.Constant(ty, ir.Undefined), ir.Constant(vtype(I32, n), [0] * n))


def intrinsic(b: ir.IRBuilder, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
    """The module's declaration of the LLVM intrinsic `name`, declared on first use."""
    fn = b.module.globals.get(name)
    return fn if fn is not None else ir.Function(b.module, ir.FunctionType(ret, args), name)


class Vec:
    def __init__(self, b: ir.IRBuilder, lanes: int, ety: ir.Type = F32):
        """Vectors of `lanes` x `ety` (fp32 unless told; fma needs a float type: fp32, or fp16
        for `--precision fp16`, which ARMv8.2 turns into `fmla v.8h`)."""
        self.b, self.lanes, self.ety = b, lanes, ety
        self.ty = ir.VectorType(ety, lanes)
        self.is_float = ety in (F32, F16)
        self.align = 4 if ety == F32 else 2 if ety == F16 else 1
        if self.is_float:
            module = b.module
            name = f"llvm.fmuladd.v{lanes}{'f32' if ety == F32 else 'f16'}"
            self._fma = module.globals.get(name) or ir.Function(module, ir.FunctionType(self.ty, [self.ty] * 3), name)

    def zeros(self) -> ir.Constant:
        return ir.Constant(self.ty, [0.0 if self.is_float else 0] * self.lanes)

    def splat(self, s: ir.Value) -> ir.Value:
        v = self.b.insert_element(ir.Constant(self.ty, ir.Undefined), s, ir.Constant(I32, 0))
        mask = ir.Constant(ir.VectorType(I32, self.lanes), [0] * self.lanes)
        return self.b.shuffle_vector(v, ir.Constant(self.ty, ir.Undefined), mask)

    def load(self, fptr: ir.Value, lanes: int | None = None) -> ir.Value:
        ty = self.ty if lanes is None else ir.VectorType(self.ety, lanes)
        return self.b.load(self.b.bitcast(fptr, ty.as_pointer()), align=self.align)

    def load_strided(self, fptr: ir.Value, stride: int) -> ir.Value:
        """Lanes fptr[0], fptr[stride], ...: one wide load and a deinterleaving shuffle."""
        if stride == 1:
            return self.load(fptr)
        wide = self.load(fptr, self.lanes * stride)
        mask = ir.Constant(ir.VectorType(I32, self.lanes), [i * stride for i in range(self.lanes)])
        return self.b.shuffle_vector(wide, ir.Constant(wide.type, ir.Undefined), mask)

    def store(self, v: ir.Value, fptr: ir.Value) -> None:
        self.b.store(v, self.b.bitcast(fptr, self.ty.as_pointer()), align=self.align)

    def store_lanes(self, v: ir.Value, fptr: ir.Value, count: int) -> None:
        """Store only the first `count` lanes (tails): no write past the row."""
        if count == self.lanes:
            self.store(v, fptr)
            return
        # power-of-two pieces (14 lanes: 8 + 4 + 2), each one narrow vector store
        at, und = 0, ir.Constant(v.type, ir.Undefined)
        while at < count:
            size = 1 << ((count - at).bit_length() - 1)
            ptr = self.b.gep(fptr, [ir.Constant(I32, at)], inbounds=True)
            if size == 1:
                self.b.store(self.b.extract_element(v, ir.Constant(I32, at)), ptr)
            else:
                part = self.b.shuffle_vector(v, und, ir.Constant(ir.VectorType(I32, size), list(range(at, at + size))))
                self.b.store(part, self.b.bitcast(ptr, part.type.as_pointer()), align=self.align)
            at += size

    def fma(self, a: ir.Value, x: ir.Value, acc: ir.Value) -> ir.Value:
        return self.b.call(self._fma, [a, x, acc])

    def splats(self, fptr: ir.Value, count: int, by_lane: bool = False) -> Iterator[ir.Value]:
        """Broadcasts of fptr[0..count), each emitted when it is taken (so code is ordered as
        with one `splat` per use): scalar loads (x86 vbroadcastss, aarch64 ldp + fmla by
        element), or with `by_lane` vector loads (of `lanes`, then 2, then 1 values, never past
        `count`) whose lanes are splatted, which armv7 NEON turns into `vmla.f32 q, q, dN[k]`:
        four broadcasts in one q register (dup-loaded broadcasts, several live at once, made the
        6x2 Winograd and 4x3 direct-conv tiles spill)."""
        b = self.b
        done = 0
        while done < count:
            at = b.gep(fptr, [ir.Constant(I32, done)], inbounds=True)
            n = count - done
            n = self.lanes if n >= self.lanes else 2 if n >= 2 else 1
            if not by_lane or n == 1:
                done += 1
                yield self.splat(b.load(at))
                continue
            part = self.load(at, n)
            for k in range(n):
                done += 1
                yield b.shuffle_vector(part, ir.Constant(part.type, ir.Undefined),
                                       ir.Constant(ir.VectorType(I32, self.lanes), [k] * self.lanes))


def concat_vectors(b: ir.IRBuilder, parts: list[ir.Value]) -> ir.Value:
    """Concatenate equal-length vectors (a shuffle tree; LLVM folds it into the final shuffle)."""
    while len(parts) > 1:
        nxt = []
        for i in range(0, len(parts) - 1, 2):
            n = parts[i].type.count
            nxt.append(b.shuffle_vector(parts[i], parts[i + 1], ir.Constant(vtype(I32, 2 * n), list(range(2 * n)))))
        if len(parts) % 2:  # pad the odd one out with itself; the lanes are never read
            n = parts[-1].type.count
            nxt.append(b.shuffle_vector(parts[-1], parts[-1], ir.Constant(vtype(I32, 2 * n), list(range(2 * n)))))
        parts = nxt
    return parts[0]

"""Assembly checks (docs/asm-checks.md), IREE's FileCheck habit: representative layers are
compiled for each target (LLVM only, no toolchain, nothing runs) and the innermost loops of their
conv/GEMM kernel must hold the intended vector instruction, and no stack stores (spills).

A "hot loop" is an innermost loop of the layer's kernel that holds the intended instruction; a
kernel whose fast path fell back (scalar FMAs, int16 pairs instead of byte dots) has none.
A case that fails today is a finding: it is marked xfail(strict=True) with the evidence in
its reason, so fixing it turns the test red until the mark goes."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.asm import describe, innermost_loops, kernel_assembly, stack_stores
from edgec.options import BuildOptions
from edgec.targets import get_profile
from tests.helpers import make_model, rand

MIN_HITS = 4  # a register tile: at least this many intended instructions per hot-loop iteration


def _conv(c: int, m: int, hw: int, k: int, pad: int, stride: int = 1):  # noqa: ANN202
    return make_model([helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[pad] * 4, strides=[stride] * 2)],
                      [("x", T.FLOAT, [1, c, hw, hw])], [("y", T.FLOAT, None)],
                      {"w": rand(m, c, k, k, seed=1, low=-0.5, high=0.5), "b": rand(m, seed=2)})


def _depthwise(c: int, hw: int, k: int):  # noqa: ANN202
    return make_model([helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[k // 2] * 4, group=c)],
                      [("x", T.FLOAT, [1, c, hw, hw])], [("y", T.FLOAT, None)],
                      {"w": rand(c, 1, k, k, seed=1, low=-0.5, high=0.5), "b": rand(c, seed=2)})


def _matmul():  # noqa: ANN202
    return make_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [("x", T.FLOAT, [64, 128])],
                      [("y", T.FLOAT, None)], {"w": rand(128, 96, seed=1)})


def _fc():  # noqa: ANN202
    return make_model([helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)], [("x", T.FLOAT, [1, 256])],
                      [("y", T.FLOAT, None)], {"w": rand(128, 256, seed=1), "b": rand(128, seed=2)})


def _qdq_conv(k: int, wmax: int):  # noqa: ANN202
    """Q(x) -> DQ -> Conv(DQ(w int8 per channel, |w| <= wmax), DQ(b)) -> Q -> DQ, 32 -> 32 at 28x28."""
    rng = np.random.default_rng(0)
    ws, xs = np.linspace(0.005, 0.01, 32).astype(np.float32), np.float32(0.03)
    inits = {"xs": np.array(xs), "xz": np.array(128, np.uint8),
             "wq": rng.integers(-wmax, wmax, (32, 32, k, k), endpoint=True).astype(np.int8),
             "ws": ws, "wz": np.zeros(32, np.int8), "bq": rng.integers(-500, 500, 32).astype(np.int32),
             "bs": (xs * ws).astype(np.float32), "bz": np.zeros(32, np.int32),
             "ys": np.array(0.02, np.float32), "yz": np.array(100, np.uint8)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0),
             helper.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["bd"], axis=0),
             helper.make_node("Conv", ["xd", "wd", "bd"], ["c"], pads=[k // 2] * 4),
             helper.make_node("QuantizeLinear", ["c", "ys", "yz"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["out"])]
    return make_model(nodes, [("x", T.FLOAT, [1, 32, 28, 28])], [("out", T.FLOAT, None)], inits, opset=19)


# layer -> (model, the kernel op(s) that must implement it)
QUADS = ("qconvdirect", "qconvocvec")
LAYERS = {
    "conv3x3": (lambda: _conv(32, 32, 28, 3, 1), "convwinograd"),
    "conv3x3_s2": (lambda: _conv(32, 64, 28, 3, 1, 2), "convocvec"),
    "conv1x1": (lambda: _conv(32, 32, 28, 1, 0), "convdirect"),
    "conv3x3_c8": (lambda: _conv(8, 32, 56, 3, 1), "convdirect"),  # too few channels for Winograd
    "conv1x1_7x7": (lambda: _conv(64, 64, 7, 1, 0), "convocvec"),  # MobileNet's last stages
    "matmul": (_matmul, "windowgemm"),
    "fc": (_fc, "gemv"),
    "q3x3": (lambda: _qdq_conv(3, 64), QUADS),  # weights in [-64, 64]: the quads (byte dot) path
    "q1x1": (lambda: _qdq_conv(1, 64), QUADS),
    "q3x3_full_range": (lambda: _qdq_conv(3, 127), "qconvdirect"),
}
FP32 = {"x86_64": r"vfmadd\d{3}ps .*%ymm", "x86_64-avx512": r"vfmadd\d{3}ps .*%zmm",
        "rpi4": r"fmla v\d+\.4s", "rpi3": r"v(?:mla|fma)\.f32 q\d+"}
INT8 = {"x86_64": r"vpmaddubsw .*%ymm", "x86_64-avx512": r"vpdpbusd ", "rpi5": r"sdot v\d+\.4s",
        "android-arm64-dotprod": r"sdot v\d+\.4s"}
FP32_LAYERS = ["conv3x3", "conv3x3_s2", "conv1x1", "conv3x3_c8", "conv1x1_7x7", "matmul", "fc"]
INT8_LAYERS = ["q3x3", "q1x1"]

# Findings: spills measured in the hot loops (llvmlite 0.50 / LLVM 20), (target, layer) -> the
# evidence, quoting the loop. None today: issue 18's scope 4 removed those found by scope 3
# (Winograd GEMM and transform loops, ConvOcvec on ARM, armv7 ConvDirect and Gemv, AVX2 QConvOcvec).
SPILLS: dict[tuple[str, str], str] = {}


@cache
def _assembly(layer: str, target: str, compute: str = "fp32") -> tuple[str, str]:
    """(symbol, assembly) of the layer's kernel; `compute`: `--precision`."""
    model, op = (FP16_LAYERS if compute == "fp16" else LAYERS)[layer]
    asm = kernel_assembly(model(), target, BuildOptions(compute=compute))
    mine = [s for s in asm if s.split("_", 2)[2] in ((op,) if isinstance(op, str) else op)]
    assert len(mine) == 1, f"{layer} on {target}: expected one {op} kernel, got {list(asm)}"
    return mine[0], asm[mine[0]]


def _hot_loops(layer: str, target: str, pattern: str, compute: str = "fp32") -> list:
    sym, asm = _assembly(layer, target, compute)
    return [lp for lp in innermost_loops(asm, sym) if lp.count(pattern)]


def _check_instruction(layer: str, target: str, pattern: str) -> None:
    sym, asm = _assembly(layer, target)
    hot = _hot_loops(layer, target, pattern)
    assert hot and max(lp.count(pattern) for lp in hot) >= MIN_HITS, (
        f"no innermost loop of {sym} has {MIN_HITS}+ /{pattern}/:\n"
        + describe(asm, sym, get_profile(target).arch, pattern))


def _check_no_spills(layer: str, target: str, pattern: str) -> None:
    sym, _ = _assembly(layer, target)
    hot = _hot_loops(layer, target, pattern)
    assert hot, f"{sym}: no hot loop"
    spilled = [(lp, stack_stores(lp, get_profile(target).arch)) for lp in hot]
    spilled = [(lp, st) for lp, st in spilled if st]
    assert not spilled, "\n".join(f"{sym} {lp.label}: {len(st)} stack stores, e.g. {st[:3]}\n{lp.text}"
                                  for lp, st in spilled[:2])


def _cases(xfail: dict | None = None) -> list:
    """(target, layer, intended instruction) for the fp32 and the int8 families."""
    out = []
    for family, layers in ((FP32, FP32_LAYERS), (INT8, INT8_LAYERS)):
        for target in family:
            for layer in layers:
                reason = (xfail or {}).get((target, layer))
                marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
                out.append(pytest.param(target, layer, family[target], marks=marks, id=f"{target}-{layer}"))
    return out


@pytest.mark.parametrize("target,layer,pattern", _cases())
def test_hot_loop_has_intended_instruction(target: str, layer: str, pattern: str) -> None:
    """fp32: x86 AVX2 vfmadd*ps on ymm, AVX-512 on zmm, aarch64 fmla .4s, armv7 vmla/vfma.f32 on q.
    int8 (the quads path): vpmaddubsw (AVX2, weights in [-64, 64]), vpdpbusd (VNNI), sdot (dotprod)."""
    _check_instruction(layer, target, pattern)


@pytest.mark.parametrize("target,layer,pattern", _cases(SPILLS))
def test_hot_loop_has_no_spills(target: str, layer: str, pattern: str) -> None:
    _check_no_spills(layer, target, pattern)


def test_full_range_int8_weights_avoid_vpmaddubsw() -> None:
    """The checker sees a path change: weights beyond [-64, 64] on AVX2 take the exact int16
    pairs (vpmaddwd), never the saturating vpmaddubsw (edgec/kernels/int8/quads.py)."""
    sym, asm = _assembly("q3x3_full_range", "x86_64")
    loops = innermost_loops(asm, sym)
    assert not any(lp.count(r"vpmaddubsw") for lp in loops)
    assert max(lp.count(r"vpmaddwd .*%ymm") for lp in loops) >= MIN_HITS


# `--precision fp16`: Winograd F(2,3) at 28x28 (fewer tiles per row than lanes), F(4,3) at 56x56
FP16_LAYERS = {
    "conv3x3": (LAYERS["conv3x3"][0], "convwinograd"),
    "conv3x3_f4": (lambda: _conv(32, 32, 56, 3, 1), "convwinograd"),
    "conv3x3_c8": (LAYERS["conv3x3_c8"][0], "convdirect"),
    "conv3x3_s2": (LAYERS["conv3x3_s2"][0], "convocvec"),
    "conv1x1": (LAYERS["conv1x1"][0], "convdirect"),
    "conv1x1_7x7": (LAYERS["conv1x1_7x7"][0], "convocvec"),
    "depthwise3x3": (lambda: _depthwise(64, 56, 3), "depthwisedirect"),
}


@pytest.mark.parametrize("layer", sorted(FP16_LAYERS))
def test_fp16_hot_loop_has_fmla_8h(layer: str) -> None:
    """`--precision fp16` on ARMv8.2 (rpi5): eight halves per multiply-add, and no spills."""
    sym, asm = _assembly(layer, "rpi5", "fp16")
    loops = innermost_loops(asm, sym)
    assert max((lp.count(r"fmla v\d+\.8h") for lp in loops), default=0) >= MIN_HITS, describe(asm, sym, "aarch64", "fmla")
    assert not any(lp.count(r"fmla v\d+\.4s") for lp in loops)
    assert not any(stack_stores(lp, "aarch64") for lp in loops if lp.count(r"fmla v\d+\.8h"))


def _affine_block():  # noqa: ANN202
    """PP-LCNetV3's learnable affine block: conv, HardSwish, then x * w + b with scalar w, b."""
    return make_model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1] * 4),
                       helper.make_node("HardSwish", ["c"], ["h"]),
                       helper.make_node("Mul", ["h", "s"], ["m"]), helper.make_node("Add", ["m", "t"], ["y"])],
                      [("x", T.FLOAT, [1, 16, 40, 40])], [("y", T.FLOAT, None)],
                      {"w": rand(32, 16, 3, 3, seed=1, low=-0.5, high=0.5), "s": rand(1, seed=2), "t": rand(1, seed=3)})


def test_fp16_elementwise_chain_stays_half() -> None:
    """`--precision fp16`: a fused elementwise chain of ops fp16 arithmetic computes exactly
    (Mul, Add) runs on halves, with no fcvtl/fcvtn around every vector (17 vs 3.5 cycles per 8
    elements by llvm-mca's A76 model)."""
    asm = kernel_assembly(_affine_block(), "rpi5", BuildOptions(compute="fp16"))
    [sym] = [s for s in asm if s.endswith("fusedelementwise")]
    loops = innermost_loops(asm[sym], sym)
    assert any(lp.count(r"fmla v\d+\.8h") for lp in loops), describe(asm[sym], sym, "aarch64", "fmla")
    assert not any(lp.count(r"fcvt[ln]") for lp in loops)

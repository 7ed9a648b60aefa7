"""The cycle model (`edgec estimate`, docs/estimate.md): work per iteration read from each
target's instructions, and the whole estimate of a small conv net for x86-64, aarch64 and
armv7 through the real llvm-mca. Correctness only: how well it predicts measured times is
printed by benchmarks/estimate.py, never asserted."""

from __future__ import annotations

import json
import shutil

import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.estimate_isa import loop_work
from tests.helpers import make_model, rand
from tests.remote.conftest import assert_clean, cli

pytestmark = pytest.mark.skipif(not any(shutil.which(f"llvm-mca{v}") for v in ("", "-14", "-19")),
                                reason="needs llvm-mca (apt-get install llvm)")


@pytest.mark.parametrize("arch, loop, work", [
    ("x86_64", ["vfmadd231ps %zmm10, %zmm1, %zmm7", "vfmadd231ps (%rax), %ymm1, %ymm7",
                "vfmadd231ss %xmm1, %xmm2, %xmm3", "vmovups %zmm1, (%rdi,%rcx,4)", "vmovss %xmm0, 4(%rax)",
                "addq $64, %rax", "vpdpbusd %zmm1, %zmm2, %zmm3"], (16 + 8 + 1 + 64, 16 + 1)),
    ("aarch64", ["fmla v0.4s, v1.4s, v2.s[0]", "fmla v3.8h, v4.8h, v5.8h", "sdot v1.4s, v2.16b, v3.4b[0]",
                 "str q0, [x1]", "stp q0, q1, [x2, #32]", "st1 { v0.4s, v1.4s }, [x0]", "ldr q1, [x3]"],
     (4 + 8 + 16, 4 + 8 + 8)),
    ("armv7", ["vmla.f32 q8, q9, d0[0]", "vfma.f32 d2, d3, d4", "vst1.32 {d16, d17}, [r0]!", "vstr s0, [r1]",
               "vldr d0, [r2]", "vstmia r0, {d8-d11}"], (4 + 2, 4 + 1 + 8)),
])
def test_work_per_iteration(arch: str, loop: list[str], work: tuple[float, float]) -> None:
    assert loop_work(loop, arch) == work


def _net() -> onnx.ModelProto:
    """Conv 3x3 16->32 on 28x28 + Relu, MaxPool, 1x1 Conv 32->64, GlobalAveragePool, Gemm."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1] * 4),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"]),
             helper.make_node("GlobalAveragePool", ["c2"], ["g"]), helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1)]
    return make_model(nodes, [("x", T.FLOAT, [1, 16, 28, 28])], [("y", T.FLOAT, None)],
                      {"w1": rand(32, 16, 3, 3, seed=1), "b1": rand(32, seed=2), "w2": rand(64, 32, 1, 1, seed=3),
                       "b2": rand(64, seed=4), "fw": rand(10, 64, seed=5), "fb": rand(10, seed=6)})


@pytest.mark.parametrize("device", ["host", "rpi4", "rpi5", "rpi3"])
def test_estimate_small_net(device: str) -> None:
    """Every kernel of the build has a row; the convs are compute bound with their MACs; no
    layer (but Winograd) beats the core's FMA peak; the total is the sum of the rows."""
    from edgec.estimate import estimate

    r = estimate(_net(), device, clock_ghz=2.0)
    ops = [x["op"] for x in r["layers"]]
    assert len(ops) >= 4 and any(op.startswith("Conv") for op in ops), ops
    convs = [x for x in r["layers"] if x["macs"] and x["op"].startswith("Conv")]
    assert sum(x["macs"] for x in convs) == 16 * 9 * 32 * 28 * 28 + 32 * 64 * 14 * 14
    for x in convs:
        assert x["loops"] and x["bound"] == "compute", x
    for x in r["layers"]:
        assert x["us"] > 0
        # MACs are direct-conv MACs: Winograd does fewer products, so it may pass "peak"
        if x["peak_fraction"] is not None and x["op"] != "ConvWinograd":
            assert 0 < x["peak_fraction"] <= 1.0, x
    assert r["total_us"] == pytest.approx(sum(x["us"] for x in r["layers"]))
    assert r["clock_ghz"] == 2.0


def test_cli_estimate(tmp_path) -> None:  # noqa: ANN001
    p = tmp_path / "net.onnx"
    onnx.save(_net(), p)
    proc = cli("estimate", str(p), "--device", "rpi4", "--json")
    assert_clean(proc, 0)
    rep = json.loads(proc.stdout)
    assert rep["device"] == "rpi4" and rep["mca_cpu"] == "cortex-a72" and rep["total_us"] > 0
    assert set(rep["layers"][0]) >= {"name", "op", "shape", "macs", "us", "mac_per_cycle", "peak_fraction"}
    assert_clean(cli("estimate", str(p), "--device", "rpi4"), 0)
    assert_clean(cli("estimate", str(p), "--device", "pi9"), 2, "unknown device")
    assert_clean(cli("estimate", str(tmp_path / "none.onnx")), 2, "no such model file")

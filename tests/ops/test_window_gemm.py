"""WindowGemm (edgec/kernels/window_gemm): long-kernel strided 1-D convolutions (an STFT as a
Conv) and MatMuls of several rows by a constant matrix, against onnxruntime on the host and
under qemu (aarch64 NEON, armv7 NEON). Shapes cover channel blocks with zero-padded tails, row
tiles with tails, several input channels, bias, a fused Relu, Gemm with transB, the last
channels as dot products (tail.py: column groups, windows not a whole number of vectors, batch
2), threads, and the prefetches of the next weight block and of the output lines."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.importer import import_model
from edgec.pipeline import run_pipeline, target_passes
from edgec.targets import get_profile
from tests.helpers import check_model, make_model, rand

F = T.FLOAT
DEVICES = ["host", "rpi4", "armv7"]


def _ops(model, device: str = "host") -> list[str]:  # noqa: ANN001
    g = run_pipeline(run_pipeline(import_model(model)).copy(), target_passes(get_profile(device)))
    return [n.op for n in g.nodes]


CONV_CASES = {
    "stft": dict(c=1, m=257, k=512, s=160, w=4000),  # openWakeWord's front end, shorter
    "two_channels_relu": dict(c=2, m=40, k=64, s=20, w=1013, relu=True, bias=True),
    "one_block_tail": dict(c=1, m=5, k=33, s=7, w=300, bias=True),
    "batch2_dot_tail": dict(c=3, m=21, k=40, s=9, w=500, bias=True, batch=2),  # 16 lanes: 16 + 5 dots
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(CONV_CASES))
def test_long_kernel_conv1d(case: str, device: str) -> None:
    p = CONV_CASES[case]
    ins = ["x", "w"] + (["b"] if p.get("bias") else [])
    nodes = [helper.make_node("Conv", ins, ["c"], kernel_shape=[p["k"]], strides=[p["s"]])]
    nodes.append(helper.make_node("Relu" if p.get("relu") else "Identity", ["c"], ["y"]))
    init = {"w": rand(p["m"], p["c"], p["k"], seed=1, low=-0.1, high=0.1)}
    if p.get("bias"):
        init["b"] = rand(p["m"], seed=2)
    shape = [p.get("batch", 1), p["c"], p["w"]]
    m = make_model(nodes, [("x", F, shape)], [("y", F, None)], init)
    assert "WindowGemm" in _ops(m, device)
    check_model(m, {"x": rand(*shape, seed=3)}, device=device)


MATMUL_CASES = {
    "mel_filterbank": dict(a=[1, 1, 75, 257], n=32),
    "wide_ctc_head": dict(a=[20, 96], n=150, bias=True, gemm=True),
    "rows_tail_relu": dict(a=[3, 7, 40], n=19, relu=True),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(MATMUL_CASES))
def test_multi_row_matmul(case: str, device: str) -> None:
    p = MATMUL_CASES[case]
    k = p["a"][-1]
    if p.get("gemm"):
        nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["c"], transB=1)]
        init = {"w": rand(p["n"], k, seed=1), "b": rand(p["n"], seed=2)}
    else:
        nodes = [helper.make_node("MatMul", ["x", "w"], ["c"])]
        init = {"w": rand(k, p["n"], seed=1)}
    nodes.append(helper.make_node("Relu" if p.get("relu") else "Identity", ["c"], ["y"]))
    m = make_model(nodes, [("x", F, p["a"])], [("y", F, None)], init)
    assert "WindowGemm" in _ops(m, device)
    check_model(m, {"x": rand(*p["a"], seed=3)}, device=device)


def test_stft_bins_threads_and_packing() -> None:
    """257 bins on 16 lanes: 4 blocks of 64 and one dot-product channel, weights packed as the
    blocks then the dot columns; 2 threads split the blocks (the last task takes the tail)."""
    from edgec.kernels.window_gemm.pack import pack, schedule

    s = schedule(get_profile("x86_64-avx512"), 257, 512)
    assert (s["nv"], s["lanes"], s["dot"]) == (4, 16, 1)
    w, bias = rand(33 * 2, 21, seed=4), rand(21, seed=5)  # 2 channels of 33 taps, 21 outputs
    s = {"mr": 2, "nv": 1, "lanes": 16, "dot": 5}
    packed, b = pack(w, bias, s, 2)
    np.testing.assert_array_equal(packed[:66 * 16].reshape(66, 16), w[:, :16])
    tail = packed[66 * 16:].reshape(5, 2, 48)
    np.testing.assert_array_equal(tail[:, :, :33], w[:, 16:].T.reshape(5, 2, 33))
    assert not tail[:, :, 33:].any()
    np.testing.assert_array_equal(b, bias)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[512], strides=[160])]
    m = make_model(nodes, [("x", F, [1, 1, 4000])], [("y", F, None)], {"w": rand(257, 1, 512, seed=1, low=-0.1, high=0.1)})
    check_model(m, {"x": rand(1, 1, 4000, seed=3)}, reference=False, threads=2)
    mm = make_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [("x", F, [40, 120])], [("y", F, None)],
                    {"w": rand(120, 1000, seed=1, low=-0.1, high=0.1)})  # 30 KB blocks: prefetched
    check_model(mm, {"x": rand(40, 120, seed=3)}, reference=False, threads=2)


def test_short_kernels_and_padding_stay_on_the_conv_kernels() -> None:
    for attrs in (dict(kernel_shape=[3]), dict(kernel_shape=[64], pads=[2, 2])):
        m = make_model([helper.make_node("Conv", ["x", "w"], ["y"], **attrs)], [("x", F, [1, 2, 300])],
                       [("y", F, None)], {"w": rand(4, 2, attrs["kernel_shape"][0], seed=1)})
        assert "WindowGemm" not in _ops(m)


def test_fp16_weights() -> None:
    """`--quantize fp16` stores WindowGemm's packed weights as float16 too."""
    p = MATMUL_CASES["wide_ctc_head"]
    m = make_model([helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)], [("x", F, p["a"])],
                   [("y", F, None)], {"w": rand(p["n"], p["a"][-1], seed=1), "b": rand(p["n"], seed=2)})
    from edgec.options import BuildOptions

    g = run_pipeline(run_pipeline(import_model(m)).copy(),
                     target_passes(get_profile("host"), BuildOptions(precision="fp16")))
    (wg,) = [n for n in g.nodes if n.op == "WindowGemm"]
    assert g.values[wg.inputs[1]].dtype == np.float32 and any(
        n.op == "Cast" and n.outputs[0] == wg.inputs[1] for n in g.nodes)
    check_model(m, {"x": rand(*p["a"], seed=3)}, tol=2e-2, quantize="fp16")  # fp16 rounding of 96-term sums

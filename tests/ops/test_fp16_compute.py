"""`--precision fp16` (issue 18, scope 5): fp16 arithmetic on ARMv8.2 (rpi5, Cortex-A76), run
under qemu-aarch64 (its default CPU, `max`, has FEAT_FP16) and compared with onnxruntime's fp32
results on the host. The kernels' instructions are pinned in tests/asm (fmla v.8h)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

import edgec
from edgec.asm import lowered_kernels
from edgec.errors import EdgecError
from edgec.options import BuildOptions
from edgec.targets import get_profile
from tests.helpers import make_model, run_edgec, run_onnxruntime

DEVICE = "rpi5"


def _conv(c: int, m: int, k: int, stride: int, hw: int, group: int = 1, act: str | None = None, seed: int = 0):  # noqa: ANN202
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((m, c // group, k, k)) / np.sqrt(c // group * k * k)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y" if act else "out"], pads=[k // 2] * 4,
                              strides=[stride] * 2, group=group)]
    if act:
        nodes.append(helper.make_node(act, ["y"], ["out"]))
    return make_model(nodes, [("x", T.FLOAT, [1, c, hw, hw])], [("out", T.FLOAT, None)],
                      {"w": w, "b": (rng.standard_normal(m) * 0.1).astype(np.float32)})


def _block():  # noqa: ANN202
    """A MobileNet/FPN-like block: conv + relu, depthwise, pointwise + residual Add, nearest
    upsample, average pool, Concat, HardSwish, ConvTranspose 2x2/2 and a Sigmoid output."""
    rng = np.random.default_rng(1)
    c, m = 8, 16

    def r(*shape: int, scale: float = 0.3) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    init = {"w": r(m, c, 3, 3, scale=0.2), "b": r(m), "dw": r(m, 1, 3, 3), "pw": r(m, m, 1, 1),
            "tw": r(2 * m, 4, 2, 2, scale=0.2), "scales": np.array([1, 1, 2, 2], np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["y1"], ["y2"]),
             helper.make_node("Conv", ["y2", "dw"], ["y3"], pads=[1, 1, 1, 1], group=m),
             helper.make_node("Conv", ["y3", "pw"], ["y4"]),
             helper.make_node("Add", ["y4", "y2"], ["y5"]),
             helper.make_node("Resize", ["y5", "", "scales"], ["y6"], mode="nearest"),
             helper.make_node("AveragePool", ["y6"], ["y7"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Concat", ["y7", "y5"], ["y8"], axis=1),
             helper.make_node("HardSwish", ["y8"], ["y9"]),
             helper.make_node("ConvTranspose", ["y9", "tw"], ["y10"], strides=[2, 2]),
             helper.make_node("Sigmoid", ["y10"], ["out"])]
    return make_model(nodes, [("x", T.FLOAT, [1, c, 20, 20])], [("out", T.FLOAT, None)], init)


def _affine_block():  # noqa: ANN202
    """PP-LCNetV3's learnable affine block after a conv: HardSwish, then x * w + b (scalars)."""
    rng = np.random.default_rng(5)
    return make_model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1] * 4),
                       helper.make_node("HardSwish", ["c"], ["h"]),
                       helper.make_node("Mul", ["h", "s"], ["m"]), helper.make_node("Add", ["m", "t"], ["out"])],
                      [("x", T.FLOAT, [1, 16, 20, 20])], [("out", T.FLOAT, None)],
                      {"w": (rng.standard_normal((32, 16, 3, 3)) * 0.1).astype(np.float32),
                       "s": np.array([1.3], np.float32), "t": np.array([-0.2], np.float32)})


CASES = {
    "conv3x3": (lambda: _conv(8, 16, 3, 1, 20), "ConvDirect"),
    "winograd": (lambda: _conv(96, 24, 3, 1, 40), "ConvWinograd"),  # F(2,3): --fast-math off
    "winograd_f4": (lambda: _conv(96, 24, 3, 1, 40), "ConvWinograd"),  # F(4,3): fast-math (default)
    "conv3x3_s2": (lambda: _conv(16, 40, 3, 2, 21), "ConvOcvec"),  # 40: a partial 8-lane block
    "stem": (lambda: _conv(3, 16, 3, 2, 41), "ConvOcvec"),  # its Pad reads the fp32 input (no Cast)
    "pointwise_panels": (lambda: _conv(16, 32, 1, 1, 7, act="HardSwish"), "ConvOcvec"),
    "pointwise_wide": (lambda: _conv(16, 24, 1, 1, 30, act="Relu"), "ConvDirect"),
    "depthwise3x3": (lambda: _conv(32, 32, 3, 1, 20, group=32), "DepthwiseDirect"),
    "depthwise5x5_s2": (lambda: _conv(24, 24, 5, 2, 21, group=24), "DepthwiseDirect"),
    "depthwise5x5_wide": (lambda: _conv(8, 8, 5, 1, 83, group=8), "DepthwiseDirect"),  # chunked rows
    "block": (_block, "ConvDirect"),
    "affine_block": (lambda: _affine_block(), "FusedElementwise"),  # x * w + b on halves
}


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.parametrize("name", sorted(CASES))
def test_fp16_kernels_match_onnxruntime(name: str) -> None:
    make, op = CASES[name]
    model = make()
    fast = name != "winograd"  # fast-math off keeps fp16 Winograd at F(2,3)
    _, g, _ = lowered_kernels(model, get_profile(DEVICE), BuildOptions(compute="fp16", fast_math=fast))
    ops = [n.op for n in g.nodes]
    assert op in ops, ops
    assert all(g.values[n.outputs[0]].dtype == np.float16 for n in g.nodes if n.op == op)
    assert "Conv" not in ops  # no fallback to the generic conv
    if name == "stem":  # the input's Cast folded into the stem's Pad (edgec/optimize/fold_cast.py)
        pad = next(n for n in g.nodes if n.op == "Pad")
        assert pad.inputs[0] == "x" and g.values[pad.outputs[0]].dtype == np.float16
        assert ops.count("Cast") == 1  # the output's
    assert all(n.attrs["tile"] == (4 if name == "winograd_f4" else 2) for n in g.nodes if n.op == "ConvWinograd")
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(7).standard_normal(shape).astype(np.float32)
    want = run_onnxruntime(model, {"x": x})[0]
    got = run_edgec(model, {"x": x}, DEVICE, precision="fp16", fast_math=fast)[0]
    assert got.dtype == np.float32 and got.shape == want.shape  # the interface stays fp32
    scale = float(np.abs(want).max())
    err = float(np.abs(got - want).max())
    rel = float(np.sqrt(np.mean((got - want) ** 2) / np.mean(want.astype(np.float64) ** 2)))
    if name == "winograd_f4":  # the fp16 sum over 96 channels of F(4,3)'s large products: ~1.3%
        assert rel <= 0.025 and _cos(got, want) >= 0.9997, f"relative RMS error {rel:.4f}"
        return
    assert err <= 4e-3 * max(1.0, scale), f"{name}: max error {err} (|ref| <= {scale})"
    assert _cos(got, want) >= 0.9999


def test_fp32_borders_and_outputs() -> None:
    """A MatMul stays fp32 after fp16 convs (a Gemv streaming fp16 weights): one conversion each
    way (the input's Cast folded into the conv's Pad), and the graph output is fp32."""
    rng = np.random.default_rng(3)
    model = make_model(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1]),
         helper.make_node("Reshape", ["y", "shape"], ["flat"]),
         helper.make_node("MatMul", ["flat", "fc"], ["out"])],
        [("x", T.FLOAT, [1, 4, 8, 8])], [("out", T.FLOAT, None)],
        {"w": (rng.standard_normal((8, 4, 3, 3)) * 0.2).astype(np.float32),
         "shape": np.array([1, 512], np.int64), "fc": (rng.standard_normal((512, 10)) * 0.05).astype(np.float32)})
    _, g, _ = lowered_kernels(model, get_profile(DEVICE), BuildOptions(compute="fp16"))
    casts = [(g.values[n.inputs[0]].dtype, g.values[n.outputs[0]].dtype) for n in g.nodes if n.op in ("Cast", "Pad")]
    assert sorted(map(str, casts)) == sorted(map(str, [(np.dtype("float32"), np.dtype("float16")),
                                                       (np.dtype("float16"), np.dtype("float32"))]))
    assert g.values[g.outputs[0]].dtype == np.float32
    [gemv] = [n for n in g.nodes if n.op == "Gemv"]  # fp32 sums over fp16 weights
    assert gemv.attrs["weights"] == "fp16" and g.values[gemv.inputs[1]].dtype == np.float16
    assert g.values[gemv.inputs[0]].dtype == np.float32
    x = rng.standard_normal((1, 4, 8, 8)).astype(np.float32)
    want = run_onnxruntime(model, {"x": x})[0]
    got = run_edgec(model, {"x": x}, DEVICE, precision="fp16")[0]
    assert _cos(got, want) >= 0.9999


@pytest.mark.parametrize("name", ["mobilenetv2", "ppocr_det"])
def test_real_size_models_under_qemu(name: str) -> None:
    """Acceptance 4: MobileNetV2 and the PP-OCR det in fp16 give cosine >= 0.999 vs fp32."""
    from edgec.models.mobilenet_v2 import mobilenet_v2
    from edgec.models.ppocr_det import ppocr_det

    model = mobilenet_v2() if name == "mobilenetv2" else ppocr_det(resolution=320)
    inp = model.graph.input[0]
    shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    want = run_onnxruntime(model, {inp.name: x})[0]
    got = run_edgec(model, {inp.name: x}, DEVICE, precision="fp16")[0]
    assert _cos(got, want) >= 0.999


@pytest.mark.parametrize("device,kw,msg", [
    ("x86_64", {}, "no half-precision arithmetic"),
    ("rpi4", {}, "no half-precision arithmetic"),
    ("rpi5", {"quantize": "fp16"}, "excludes --quantize"),
    ("rpi5", {"weights": "int8"}, "excludes --quantize and --weights"),
])
def test_clear_errors(tmp_path, device: str, kw: dict, msg: str) -> None:  # noqa: ANN001
    with pytest.raises(EdgecError, match=msg):
        edgec.build(CASES["conv3x3"][0](), device=device, out_dir=tmp_path / "b", precision="fp16", **kw)
    assert not (tmp_path / "b").exists()


def test_bad_precision_value(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(EdgecError, match="expected fp32 or fp16"):
        edgec.build(CASES["conv3x3"][0](), device="rpi5", out_dir=tmp_path / "b", precision="bf16")


@pytest.mark.parametrize("device", ["host", "rpi4", "rpi3"])
@pytest.mark.parametrize("hw,stride", [(83, 1), (61, 2)])
def test_wide_padded_depthwise_fp32(device: str, hw: int, stride: int) -> None:
    """The padded depthwise kernel's chunked rows (weights by lane) in fp32 on every ISA."""
    model = _conv(16, 16, 5, stride, hw, group=16, act="Relu", seed=4)
    x = np.random.default_rng(5).standard_normal((1, 16, hw, hw)).astype(np.float32)
    want = run_onnxruntime(model, {"x": x})[0]
    got = run_edgec(model, {"x": x}, device)[0]
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, float(np.abs(want).max()))


def _dtypes(model) -> dict[str, str]:  # noqa: ANN001
    """node name -> the dtype of its output, after the target passes of an fp16 build (the
    members of a fused chain, named "a+b", each get the chain's)."""
    _, g, _ = lowered_kernels(model, get_profile(DEVICE), BuildOptions(compute="fp16"))
    return {part: str(g.values[n.outputs[0]].dtype) for n in g.nodes for part in (n.name or n.op).split("+")}


def test_what_stays_fp32() -> None:
    """Convs start fp16 regions; a chain of elementwise ops with no conv before it stays fp32
    (no casts back and forth), and so does a product of two activations (x * x overflows fp16
    beyond 256) unless one of them is a sigmoid gate."""
    rng = np.random.default_rng(2)
    w = (rng.standard_normal((8, 8, 1, 1)) * 0.3).astype(np.float32)
    model = make_model(
        [helper.make_node("Add", ["x", "one"], ["a"], name="pre_add"),          # before any conv
         helper.make_node("Conv", ["a", "w"], ["c"], name="conv"),
         helper.make_node("Mul", ["c", "c"], ["sq"], name="square"),           # two activations
         helper.make_node("Sigmoid", ["c"], ["gate"], name="gate"),
         helper.make_node("Mul", ["c", "gate"], ["se"], name="gated"),         # times a gate
         helper.make_node("Add", ["sq", "se"], ["out"], name="sum")],
        [("x", T.FLOAT, [1, 8, 6, 6])], [("out", T.FLOAT, None)], {"w": w, "one": np.ones(1, np.float32)})
    dt = _dtypes(model)
    assert dt["pre_add"] == "float32" and dt["square"] == "float32"
    assert dt["gated"] == "float16"  # c * Sigmoid(c): a Swish (edgec/optimize/activation_patterns.py)
    x = rng.standard_normal((1, 8, 6, 6)).astype(np.float32)
    want = run_onnxruntime(model, {"x": x})[0]
    assert _cos(run_edgec(model, {"x": x}, DEVICE, precision="fp16")[0], want) >= 0.9999


def test_calibration_keeps_wide_layers_fp32(tmp_path) -> None:  # noqa: ANN001
    """An STFT-like conv on 16-bit-scale audio leaves fp16's range (inf, then NaN after the
    square); with --calibration that layer and its neighbours stay fp32 and the result is right."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((16, 1, 64)).astype(np.float32)
    model = make_model(
        [helper.make_node("Conv", ["x", "w"], ["spec"], strides=[16]),
         helper.make_node("Relu", ["spec"], ["mag"]),
         helper.make_node("Conv", ["mag", "w2"], ["out"])],
        [("x", T.FLOAT, [1, 1, 1024])], [("out", T.FLOAT, None)],
        {"w": w, "w2": (rng.standard_normal((4, 16, 1)) * 0.1).astype(np.float32)})
    x = (rng.standard_normal((1, 1, 1024)) * 20000).astype(np.float32)
    want = run_onnxruntime(model, {"x": x})[0]
    plain = run_edgec(model, {"x": x}, DEVICE, precision="fp16")[0]
    assert not np.isfinite(plain).all() or _cos(plain, want) < 0.999  # what the guard is for
    np.savez(tmp_path / "cal.npz", x=x)
    got = run_edgec(model, {"x": x}, DEVICE, precision="fp16", calibration=tmp_path / "cal.npz")[0]
    assert np.isfinite(got).all() and _cos(got, want) >= 0.99999


def test_estimate_and_tune_refuse_fp16_without_the_hardware(tmp_path) -> None:  # noqa: ANN001
    """`edgec estimate` and `edgec tune` check --precision fp16 against the device as the build does."""
    import onnx

    from edgec.estimate import estimate
    from tests.remote.conftest import assert_clean, cli

    model = CASES["conv3x3"][0]()
    with pytest.raises(EdgecError, match="no half-precision arithmetic"):
        estimate(model, "rpi4", BuildOptions(compute="fp16"))
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    assert_clean(cli("estimate", str(path), "--device", "x86_64", "--precision", "fp16"), 2,
                 "no half-precision arithmetic")
    assert_clean(cli("tune", str(path), "--device", "local", "--precision", "fp16", "--log", str(tmp_path / "t.jsonl"),
                     "--trials", "1"), 2, "no half-precision arithmetic")
    assert not (tmp_path / "t.jsonl").exists()


def test_profile_peak_of_fp16_layers() -> None:
    """`edgec bench --profile` rates an fp16 layer against twice the core's fp32 FMA peak (the
    build records `dtype` in the profile table of fp16 kernels only)."""
    from edgec.device.profile_report import peak_mac_per_cycle, summarize

    rpi5 = get_profile(DEVICE)
    layers = [{"name": "a", "op": "ConvDirect", "shape": [1], "macs": 8000},
              {"name": "b", "op": "ConvDirect", "shape": [1], "macs": 8000, "dtype": "float16"}]
    raw = {"timer": "cntvct", "ticks_per_s": 1e6, "cpu_hz": 1e9, "calls": [1, 1], "ticks": [1, 1], "run_ticks": [1, 1]}
    rep = summarize({"profile": {"layers": layers}}, {"profile": raw, "runs": 1}, rpi5, False, "test")
    a, b = rep["layers"]
    assert a["mac_per_cycle"] == b["mac_per_cycle"] == 8.0
    assert a["peak_fraction"] == 8.0 / peak_mac_per_cycle(rpi5) and b["peak_fraction"] == a["peak_fraction"] / 2
    front, g, units = lowered_kernels(_block(), rpi5, BuildOptions(compute="fp16", profile=True))
    from edgec.codegen.executor import estimated_macs
    from edgec.codegen.profile import layer_table

    table = layer_table(front, g, [u.node for u in units], {k: estimated_macs(g, u.node) for k, u in enumerate(units)})
    half = {t["op"] for t in table if t.get("dtype") == "float16"}
    assert {"ConvDirect", "DepthwiseDirect"} <= half
    assert not any(t.get("dtype") for t, u in zip(table, units)
                   if g.values[u.node.outputs[0]].dtype == np.float32)  # fp32 kernels: no dtype key


def test_threads_and_optional_outputs() -> None:
    """fp16 kernels split over 2 threads give the 1-thread bits; a MaxPool whose optional Indices
    output is left out ("") takes fp16 like any pool."""
    model = _block()
    x = np.random.default_rng(9).standard_normal((1, 8, 20, 20)).astype(np.float32)
    one = run_edgec(model, {"x": x}, DEVICE, precision="fp16")[0]
    two = run_edgec(model, {"x": x}, DEVICE, precision="fp16", threads=2)[0]
    np.testing.assert_array_equal(one, two)
    pool = make_model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                       helper.make_node("MaxPool", ["c"], ["out", ""], kernel_shape=[2, 2], strides=[2, 2])],
                      [("x", T.FLOAT, [1, 4, 8, 8])], [("out", T.FLOAT, [1, 8, 4, 4])],
                      {"w": np.random.default_rng(1).standard_normal((8, 4, 3, 3)).astype(np.float32) * 0.2})
    x = np.random.default_rng(2).standard_normal((1, 4, 8, 8)).astype(np.float32)
    assert _cos(run_edgec(pool, {"x": x}, DEVICE, precision="fp16")[0], run_onnxruntime(pool, {"x": x})[0]) >= 0.9999

"""The vpmaddubsw path of QLinearConv (QConvQuads + QConvDirect dot="u8s8", x86 AVX2): bit-exact
vs onnxruntime (with weights in [-64, 64] onnxruntime's own u8 x s8 kernels are exact too), and
taken only where it cannot saturate. Layer shapes cover both layouts ("channels": dense and
grouped, partial channel quads, 16-pixel vector chunks plus scalar tails, strides, the flattened
1x1; "spatial": depthwise rows with strides, dilation, kernel widths 2..3, channel multipliers).
Strided convs and rows under 32 pixels with 16k output channels take QConvOcvec instead (output
channels on the lanes): row tails, strides, dilation, an RGB stem, a strided 1x1."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.importer import import_model
from edgec.kernels.int8.prepare import prepare_qconv
from edgec.pipeline import run_pipeline
from edgec.targets.profiles import get_profile, host_profile
from tests.helpers import check_model, make_model, run_edgec
from tests.ops.test_quant import _ints, _qconv_model

# the vpmaddubsw kernels are built for the AVX2 profile and run on any host that has AVX2
# (an AVX-512 host too: its own profile takes the VNNI or pair paths)
HOST_AVX2 = host_profile().arch == "x86_64" and "+avx2" in host_profile().features.split(",")
AVX2 = "x86_64"
HOST_VNNI = host_profile().int8_dot == "vnni"

CASES = {
    "dense3x3_wide": dict(k=3, cin=8, m=16, hw=37, pads=[1, 1, 1, 1]),
    "dense3x3_s2_partial_quad": dict(k=3, cin=6, m=11, hw=35, pads=[1, 0, 1, 2], strides=[2, 2]),
    "pointwise_flat": dict(k=1, cin=20, m=24, hw=19),
    "first_conv_rgb": dict(k=3, cin=3, m=8, hw=33, pads=[1, 1, 1, 1], strides=[2, 2]),
    "grouped_cg5": dict(k=3, cin=10, m=6, hw=18, pads=[1, 1, 1, 1], group=2),
    "depthwise_wide": dict(k=3, cin=8, m=8, hw=40, pads=[1, 1, 1, 1], group=8),
    "depthwise_s2": dict(k=3, cin=8, m=8, hw=39, pads=[1, 1, 1, 1], strides=[2, 2], group=8),
    "depthwise_dilated": dict(k=3, cin=4, m=4, hw=21, pads=[2, 2, 2, 2], dilations=[2, 2], group=4),
    "depthwise_mult2_k2": dict(k=2, cin=4, m=8, hw=17, pads=[0, 1, 1, 0], group=4),
}

OCVEC_CASES = {
    "s2_3x3": dict(k=3, cin=12, m=32, hw=29, pads=[1, 1, 1, 1], strides=[2, 2]),  # 15 = 5+5+5
    "row7_tail": dict(k=3, cin=16, m=16, hw=7, pads=[1, 1, 1, 1]),  # 7 = 4 + 3
    "row14": dict(k=3, cin=8, m=48, hw=14, pads=[1, 1, 1, 1]),  # 14 = 5 + 5 + 4
    "row1": dict(k=3, cin=8, m=16, hw=3, pads=[0, 0, 0, 0]),  # one output pixel
    "rgb_stem_7x7_s2": dict(k=7, cin=3, m=16, hw=40, pads=[3, 3, 3, 3], strides=[2, 2]),
    "pointwise_s2": dict(k=1, cin=20, m=32, hw=17, strides=[2, 2]),
    "pointwise_flat_7x7": dict(k=1, cin=40, m=32, hw=7),  # 49 pixels as one row: 9 x 5 + 4
    "dilated_asym_pads": dict(k=3, cin=5, m=16, hw=13, pads=[2, 1, 0, 2], dilations=[2, 2]),
}

# depthwise, multiplier 1, kernel width <= 4, row stride 1 or 2: QDepthwiseBytes (no quad pass)
BYTES_CASES = {
    "w40_s1": dict(k=3, cin=8, m=8, hw=40, pads=[1, 1, 1, 1]),  # 32-byte copies + overlap
    "w13_s2": dict(k=3, cin=4, m=4, hw=13, pads=[1, 1, 1, 1], strides=[2, 2]),  # small pieces, tail 7
    "w64_s2_asym": dict(k=3, cin=3, m=3, hw=64, pads=[0, 1, 1, 2], strides=[2, 2]),
    "k4_pads2": dict(k=4, cin=5, m=5, hw=21, pads=[2, 2, 1, 1]),
    "k2_nopad": dict(k=2, cin=2, m=2, hw=9),
    "k5_rows_dilated_h": dict(k=3, cin=4, m=4, hw=19, pads=[2, 1, 2, 1], dilations=[2, 1]),
    "row_of_one": dict(k=3, cin=16, m=16, hw=2, pads=[1, 1, 1, 1], strides=[2, 2]),
    "bands_s1": dict(k=3, cin=2, m=2, hw=300, pads=[1, 1, 1, 1]),  # 4 bands of buffered rows
    "bands_s2": dict(k=3, cin=2, m=2, hw=300, pads=[1, 1, 1, 1], strides=[2, 2]),
    "k5_two_quads": dict(k=5, cin=6, m=6, hw=37, pads=[2, 2, 2, 2]),  # PP-LCNet's 5x5
    "k5_s2_asym": dict(k=5, cin=3, m=3, hw=30, pads=[2, 1, 2, 3], strides=[2, 2]),
    "k7_s1": dict(k=7, cin=2, m=2, hw=19, pads=[3, 3, 3, 3]),
    "k8_nopad": dict(k=8, cin=2, m=2, hw=24),
}


def _model(xt: str, case: dict, w: np.ndarray | None = None, seed: int = 11):  # noqa: ANN202
    c = dict(case)
    k, cin, m_, hw, g = c.pop("k"), c.pop("cin"), c.pop("m"), c.pop("hw"), c.get("group", 1)
    if w is None:
        w = _ints("int8", m_, cin // g, k, k, seed=seed) // 2  # [-64, 63]
    return _qconv_model(xt, "int8", w, cin, hw, True, kernel_shape=[k, k], **c)


def _ops(model, profile=None) -> list[str]:  # noqa: ANN001
    g = prepare_qconv(profile or get_profile(AVX2))(run_pipeline(import_model(model)))
    return [n.op + (":" + n.attrs["dot"] if n.attrs.get("dot") else "") for n in g.nodes]


@pytest.mark.skipif(not HOST_AVX2, reason="needs an AVX2 host")
@pytest.mark.parametrize("xt", ["uint8", "int8"])
@pytest.mark.parametrize("name", list(CASES))
def test_u8s8_path_matches_onnxruntime(xt: str, name: str) -> None:
    model, feeds = _model(xt, CASES[name])
    ops = _ops(model)
    assert "QConvDirect:u8s8" in ops or "QDepthwiseBytes:u8s8" in ops
    check_model(model, feeds, device=AVX2, reference=False)


@pytest.mark.skipif(not HOST_AVX2, reason="needs an AVX2 host")
@pytest.mark.parametrize("xt", ["uint8", "int8"])
@pytest.mark.parametrize("name", list(BYTES_CASES))
def test_depthwise_bytes_matches_onnxruntime(xt: str, name: str) -> None:
    case = dict(BYTES_CASES[name], group=BYTES_CASES[name]["cin"])
    model, feeds = _model(xt, case, seed=31)
    assert _ops(model) == ["QDepthwiseBytes:u8s8"]
    check_model(model, feeds, device=AVX2, reference=False)


@pytest.mark.skipif(not HOST_AVX2, reason="needs an AVX2 host")
@pytest.mark.parametrize("xt", ["uint8", "int8"])
@pytest.mark.parametrize("name", list(OCVEC_CASES))
def test_ocvec_path_matches_onnxruntime(xt: str, name: str) -> None:
    model, feeds = _model(xt, OCVEC_CASES[name], seed=23)
    ops = _ops(model)
    assert "QConvOcvec:u8s8" in ops and "QConvDirect:u8s8" not in ops
    check_model(model, feeds, device=AVX2, reference=False)


def test_ocvec_is_chosen_by_stride_and_width() -> None:
    """Wide stride-1 rows stay pixel-vectorized; 8 (not 16k) output channels or groups too."""
    for case in (dict(k=3, cin=8, m=16, hw=40, pads=[1, 1, 1, 1]), dict(k=1, cin=8, m=16, hw=9),
                 dict(k=3, cin=8, m=8, hw=14, pads=[1, 1, 1, 1]),
                 dict(k=3, cin=8, m=32, hw=14, pads=[1, 1, 1, 1], group=2)):
        ops = _ops(_model("uint8", case)[0], get_profile("x86_64"))
        assert "QConvOcvec:u8s8" not in ops and "QConvDirect:u8s8" in ops


@pytest.mark.skipif(not HOST_AVX2, reason="needs an AVX2 host")
@pytest.mark.parametrize("xt", ["uint8", "int8"])
def test_extreme_weights_do_not_saturate(xt: str) -> None:
    """|w| = 64 everywhere with same-sign pairs and the largest stored bytes: every vpmaddubsw
    pair sums to +-2 * 255 * 64 = +-32640, the edge of int16."""
    m_, cin = 8, 8
    w = np.where(np.arange(m_ * cin * 9).reshape(m_, cin, 3, 3) % 8 < 4, 64, -64).astype(np.int8)
    for case in (dict(k=3, cin=cin, m=m_, hw=20, pads=[1, 1, 1, 1]),
                 dict(k=3, cin=cin, m=m_, hw=20, pads=[1, 1, 1, 1], group=cin),
                 dict(k=3, cin=cin, m=2 * m_, hw=20, pads=[1, 1, 1, 1], strides=[2, 2])):
        ww = w if case.get("group", 1) == 1 else w[:, :1]
        ww = np.concatenate([ww, -ww]) if case["m"] > m_ else ww
        model, feeds = _model(xt, case, ww)
        feeds["x"][:] = np.iinfo(xt).max
        feeds["x"][0, :, ::3, ::2] = np.iinfo(xt).min + 7
        init = {i.name: i for i in model.graph.initializer}  # a large output scale keeps y in range
        init["ys"].CopyFrom(helper.make_tensor("ys", T.FLOAT, [], [40.0]))
        assert any(op.endswith(":u8s8") for op in _ops(model))
        check_model(model, feeds, device=AVX2, reference=False)


def test_full_range_weights_take_the_exact_path() -> None:
    """One weight of 65 (or -65) anywhere in the layer sends it to the int16-pair kernel."""
    for wv in (65, -65, 127, -128):
        w = _ints("int8", 8, 8, 3, 3, seed=3) // 2
        w[5, 3, 1, 2] = wv
        model, _ = _model("uint8", dict(k=3, cin=8, m=8, hw=9, pads=[1, 1, 1, 1]), w)
        ops = _ops(model, get_profile("x86_64"))
        assert "QConvQuads" not in ops and "QConvDirect:u8s8" not in ops and "QConvDirect" in ops
    w = _ints("int8", 8, 8, 3, 3, seed=3) // 2
    model, _ = _model("uint8", dict(k=3, cin=8, m=8, hw=9, pads=[1, 1, 1, 1]), w)
    assert "QConvDirect:u8s8" in _ops(model, get_profile("x86_64"))
    for dev in ("rpi4", "rpi5", "x86_64-avx512"):  # no vpmaddubsw there (VNNI: vpdpbusd)
        assert "QConvDirect:u8s8" not in _ops(model, get_profile(dev))


@pytest.mark.skipif(not HOST_AVX2, reason="needs an AVX2 host")
def test_mobilenet_block_u8s8() -> None:
    """Pointwise -> depthwise -> pointwise chain on the quad path, int8 end to end."""
    rng = np.random.default_rng(5)
    inits = {}
    nodes = []
    prev, chans = "x", 16
    for i, (k, m_, g) in enumerate([(1, 32, 1), (3, 32, 32), (1, 16, 1)]):
        inits |= {f"w{i}": (rng.integers(-64, 64, (m_, chans // g, k, k))).astype(np.int8),
                  f"ws{i}": rng.uniform(0.004, 0.02, m_).astype(np.float32),
                  f"wz{i}": np.zeros(m_, np.int8), f"ys{i}": np.array(0.09 + 0.03 * i, np.float32),
                  f"yz{i}": np.array(100 + 9 * i, np.uint8),
                  f"b{i}": rng.integers(-2000, 2000, m_).astype(np.int32)}
        xs, xz = ("xs", "xz") if i == 0 else (f"ys{i - 1}", f"yz{i - 1}")
        nodes.append(helper.make_node("QLinearConv", [prev, xs, xz, f"w{i}", f"ws{i}", f"wz{i}", f"ys{i}",
                                                      f"yz{i}", f"b{i}"], [f"y{i}"], group=g,
                                      kernel_shape=[k, k], pads=[k // 2] * 4))
        prev, chans = f"y{i}", m_
    inits |= {"xs": np.array(0.05, np.float32), "xz": np.array(7, np.uint8)}
    model = make_model(nodes, [("x", T.UINT8, [1, 16, 23, 23])], [("y2", T.UINT8, None)], inits)
    assert _ops(model).count("QConvDirect:u8s8") == 2 and "QDepthwiseBytes:u8s8" in _ops(model)
    check_model(model, {"x": _ints("uint8", 1, 16, 23, 23, seed=6)}, device=AVX2, reference=False)


@pytest.mark.skipif(not HOST_AVX2, reason="needs an AVX2 host")
@pytest.mark.parametrize("xt", ["uint8", "int8"])
@pytest.mark.parametrize("ys", [0.002, 1e-9])
def test_saturating_requantization(xt: str, ys: float) -> None:
    """Outputs far outside the byte range clamp like onnxruntime's. ys = 0.002: the packed
    requantization (saturating packs); ys = 1e-9: acc * multiplier can pass 2^31, so the
    kernels must keep the float clamp (their build-time bound says so)."""
    for case in (dict(k=3, cin=8, m=8, hw=37, pads=[1, 1, 1, 1], group=8),
                 dict(k=3, cin=8, m=16, hw=37, pads=[1, 1, 1, 1]),
                 dict(k=3, cin=8, m=16, hw=15, pads=[1, 1, 1, 1], strides=[2, 2])):
        model, feeds = _model(xt, case, seed=41)
        init = {i.name: i for i in model.graph.initializer}
        init["ys"].CopyFrom(helper.make_tensor("ys", T.FLOAT, [], [ys]))
        check_model(model, feeds, device=AVX2, reference=False)


SDOT_CASES = {k: CASES[k] for k in ("dense3x3_wide", "dense3x3_s2_partial_quad", "pointwise_flat", "first_conv_rgb",
                                    "depthwise_s2", "depthwise_mult2_k2")}


@pytest.mark.parametrize("xt", ["uint8", "int8"])
@pytest.mark.parametrize("name", list(SDOT_CASES))
def test_sdot_path_under_qemu(xt: str, name: str) -> None:
    """aarch64 with dotprod (rpi5): the same byte quads, multiplied by sdot (signed x signed,
    so full-range weights too; uint8 activations are stored as x - 128). Bit-exact vs
    onnxruntime, run under qemu-aarch64."""
    case = SDOT_CASES[name]
    g = case.get("group", 1)
    model, feeds = _model(xt, case, seed=13)
    ops = _ops(model, get_profile("rpi5"))
    assert "QConvDirect:s8s8" in ops and "QConvQuads" in ops
    assert "QConvDirect:s8s8" not in _ops(model, get_profile("rpi4"))  # no dotprod there
    check_model(model, feeds, "rpi5", reference=False)
    # full-range weights: onnxruntime's AVX2 kernels saturate there (and onnx.reference rounds
    # in float64); the oracle is edgec's exact int16-pair kernel on the host
    w = _ints("int8", case["m"], case["cin"] // g, case["k"], case["k"], seed=14)
    model, feeds = _model(xt, case, w)
    assert "QConvDirect:s8s8" in _ops(model, get_profile("rpi5"))
    assert not any(op.endswith(":u8s8") for op in _ops(model))
    np.testing.assert_array_equal(run_edgec(model, feeds, "rpi5")[0], run_edgec(model, feeds)[0])


def _full_range(case: dict, seed: int) -> np.ndarray:
    g = case.get("group", 1)
    w = _ints("int8", case["m"], case["cin"] // g, case["k"], case["k"], seed=seed)
    w.reshape(-1)[:4] = [127, -127, 127, -128]  # the extremes, which vpmaddubsw pairs would saturate
    return w


VNNI_CASES = {**CASES, **{f"ocvec_{k}": v for k, v in OCVEC_CASES.items()},
              **{f"bytes_{k}": dict(v, group=v["cin"]) for k, v in BYTES_CASES.items()}}


@pytest.mark.skipif(not HOST_VNNI, reason="needs an x86 host with AVX512-VNNI (or AVX-VNNI)")
@pytest.mark.parametrize("xt", ["uint8", "int8"])
@pytest.mark.parametrize("name", list(VNNI_CASES))
def test_vnni_path_matches_onnxruntime(xt: str, name: str) -> None:
    """x86 with VNNI: the same byte quads multiplied by vpdpbusd, exact for full-range weights
    (no 7-bit condition): bit-exact vs onnxruntime."""
    case = VNNI_CASES[name]
    model, feeds = _model(xt, case, _full_range(case, seed=13))
    ops = _ops(model, host_profile())
    assert any(op.endswith(":vnni") for op in ops) and not any(op.endswith(":u8s8") for op in ops), ops
    check_model(model, feeds, reference=False)


def test_vnni_profile_compiles_to_vpdpbusd(tmp_path) -> None:  # noqa: ANN001
    """Built for the x86_64-avx512 profile (no VNNI hardware needed to compile): the conv
    kernels multiply with vpdpbusd, not with the vpmaddubsw or vpmaddwd fallbacks."""
    import subprocess

    import edgec

    case = dict(k=3, cin=16, m=32, hw=40, pads=[1, 1, 1, 1])  # a wide stride-1 row: QConvDirect
    model, _ = _model("uint8", case, _full_range(case, seed=3))
    assert _ops(model, get_profile("x86_64-avx512")) == ["QConvQuads", "QConvDirect:vnni"]
    edgec.build(model, device="x86_64-avx512", out_dir=tmp_path / "b")
    obj = next((tmp_path / "b" / "obj").glob("*kernels*.o"))
    asm = subprocess.run(["objdump", "-d", str(obj)], capture_output=True, text=True, check=True).stdout
    assert "vpdpbusd" in asm and "vpmaddubsw" not in asm and "vpmaddwd" not in asm

"""Quantization ops vs onnxruntime, bit-exact: QuantizeLinear / DequantizeLinear (per tensor
and per axis, uint8 / int8 / 16-bit), DynamicQuantizeLinear, QLinearConv, ConvInteger,
QLinearMatMul, MatMulInteger, with run-time and constant parameters.

onnxruntime's u8 x s8 kernels on AVX2 machines without VNNI (this host) use vpmaddubsw, which
saturates a pair of products at int16: with full-range data (255 * 127 * 2 > 32767) its results
are off by up to the whole range. edgec accumulates exactly. So the u8s8 comparisons with
onnxruntime use 7-bit weights (where no pair can saturate), and full-range u8s8 data is compared
with onnx.reference (exact integer arithmetic)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.errors import ModelError
from tests.helpers import check_model, make_model, rand, run_edgec, run_onnxruntime, run_reference

F = T.FLOAT
QT = {"uint8": T.UINT8, "int8": T.INT8, "uint16": T.UINT16, "int16": T.INT16}


def _ints(dtype: str, *shape: int, seed: int = 0) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.random.default_rng(seed).integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def _ties(n: int, scale: float) -> np.ndarray:
    """Values exactly halfway between two steps (round half to even matters) and beyond range."""
    k = np.arange(-n // 2, n - n // 2, dtype=np.float32)
    return np.concatenate([(k + 0.5) * scale, k * scale * 3.1, [1e9, -1e9, 0.0]]).astype(np.float32)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16"])
@pytest.mark.parametrize("opset", [13, 19, 21])
def test_quantize_per_tensor(dtype: str, opset: int) -> None:
    if dtype.endswith("16") and opset < 21:
        pytest.skip("16-bit QuantizeLinear needs opset 21")
    x = np.concatenate([_ties(600, 0.25), rand(200, seed=1, low=-90, high=90)]).astype(np.float32)
    zp = np.array(7 if dtype.startswith("u") else -3, dtype=dtype)
    m = make_model([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])], [("x", F, [x.size])],
                   [("y", QT[dtype], [x.size])], {"s": np.array(0.25, np.float32), "z": zp}, opset=opset)
    check_model(m, {"x": x}, reference=False)


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_quantize_runtime_params_per_axis(dtype: str) -> None:
    """Scale and zero point fed at run time, one per channel of axis 1."""
    x = rand(2, 3, 5, 7, seed=2, low=-50, high=50)
    s = np.array([0.2, 0.5, 0.125], np.float32)
    z = _ints(dtype, 3, seed=3) // 2
    m = make_model([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=1)],
                   [("x", F, [2, 3, 5, 7]), ("s", F, [3]), ("z", QT[dtype], [3])],
                   [("y", QT[dtype], [2, 3, 5, 7])])
    check_model(m, {"x": x, "s": s, "z": z})


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int32"])
def test_dequantize(dtype: str) -> None:
    tq = T.INT32 if dtype == "int32" else QT[dtype]
    x = np.random.default_rng(4).integers(-100000, 100000, (4, 6)).astype(dtype) if dtype == "int32" \
        else _ints(dtype, 4, 6, seed=4)
    z = np.zeros(4, dtype) if dtype == "int32" else np.array([5, 0, 9, 100], dtype=dtype)
    m = make_model([helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], axis=0)],
                   [("x", tq, [4, 6]), ("s", F, [4])], [("y", F, [4, 6])], {"z": z}, opset=19)
    check_model(m, {"x": x, "s": np.array([0.1, 0.03, 2.5, 1e-3], np.float32)})


def test_dequantize_per_tensor_runtime() -> None:
    m = make_model([helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"])],
                   [("x", T.UINT8, [3, 7]), ("s", F, []), ("z", T.UINT8, [])], [("y", F, [3, 7])], opset=19)
    check_model(m, {"x": _ints("uint8", 3, 7, seed=5), "s": np.array(0.37, np.float32),
                    "z": np.array(131, np.uint8)})


@pytest.mark.parametrize("device", ["host", "x86_64", "rpi4"])
def test_dynamic_quantize(device: str) -> None:
    """Vector min/max and quantization with a scalar tail (150 = 9 x 16 + 6); the extremes
    also sit in the tail."""
    m = make_model([helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])], [("x", F, [3, 50])],
                   [("y", T.UINT8, [3, 50]), ("s", F, []), ("z", T.UINT8, [])])
    for seed, (lo, hi) in enumerate([(-3.0, 5.0), (0.5, 9.0), (-7.0, -1.0)]):
        x = rand(3, 50, seed=seed, low=lo, high=hi)
        check_model(m, {"x": x}, device=device, reference=False)
        x[2, -1], x[2, -2] = 3 * hi, 3 * lo
        check_model(m, {"x": x}, device=device, reference=False)


def _qconv_model(xt: str, wt: str, w: np.ndarray, cin: int, hw: int, consts: bool, **attrs: object):
    m_ = w.shape[0]
    params = {"xs": np.array(0.05, np.float32), "xz": np.array(3 if xt == "uint8" else -2, xt),
              "w": w, "ws": np.linspace(0.01, 0.03, m_).astype(np.float32),
              "wz": np.zeros(m_, wt), "ys": np.array(0.07, np.float32),
              "yz": np.array(120 if xt == "uint8" else 5, xt),
              "b": np.random.default_rng(9).integers(-3000, 3000, m_).astype(np.int32)}
    names = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"]
    types = {"xs": F, "ws": F, "ys": F, "xz": QT[xt], "yz": QT[xt], "w": QT[wt], "wz": QT[wt], "b": T.INT32}
    inputs = [("x", QT[xt], [1, cin, hw, hw])]
    if not consts:
        inputs += [(k, types[k], list(params[k].shape)) for k in names[1:]]
    m = make_model([helper.make_node("QLinearConv", names, ["y"], **attrs)], inputs, [("y", QT[xt], None)],
                   params if consts else None)
    feeds = {"x": _ints(xt, 1, cin, hw, hw, seed=10)}
    if not consts:
        feeds.update({k: params[k] for k in names[1:]})
    return m, feeds


CONV_CASES = [
    dict(k=3, cin=8, m=16, hw=9, pads=[1, 1, 1, 1], strides=[1, 1], group=1),
    dict(k=3, cin=8, m=12, hw=10, pads=[1, 0, 1, 2], strides=[2, 2], group=1),
    dict(k=1, cin=24, m=40, hw=7, pads=[0, 0, 0, 0], strides=[1, 1], group=1),
    dict(k=3, cin=16, m=16, hw=11, pads=[1, 1, 1, 1], strides=[1, 1], group=16),
    dict(k=3, cin=12, m=12, hw=9, pads=[1, 1, 1, 1], strides=[2, 2], group=12),
    dict(k=3, cin=12, m=9, hw=8, pads=[1, 1, 1, 1], strides=[1, 1], group=3),
    dict(k=7, cin=3, m=10, hw=20, pads=[3, 3, 3, 3], strides=[2, 2], group=1),
]


@pytest.mark.parametrize("xt", ["uint8", "int8"])
@pytest.mark.parametrize("case", CONV_CASES)
def test_qlinear_conv(xt: str, case: dict) -> None:
    """Constant weights: the register-blocked integer kernel (QConvDirect)."""
    _check_qconv(xt, case, True)


@pytest.mark.parametrize("case", [CONV_CASES[0], CONV_CASES[3]], ids=["dense", "depthwise"])
def test_qlinear_conv_runtime_params(case: dict) -> None:
    """Everything fed at run time: the generic kernel."""
    _check_qconv("uint8", case, False)


def _check_qconv(xt: str, case: dict, consts: bool) -> None:
    k, cin, m_, g = case["k"], case["cin"], case["m"], case["group"]
    w = _ints("int8", m_, cin // g, k, k, seed=11) // 2  # 7-bit: see the module docstring
    model, feeds = _qconv_model(xt, "int8", w, cin, case["hw"], consts, kernel_shape=[k, k],
                                pads=case["pads"], strides=case["strides"], group=g)
    check_model(model, feeds, reference=False)


@pytest.mark.parametrize("xt", ["uint8", "int8"])
def test_qlinear_conv_full_range_exact(xt: str) -> None:
    """Full-range int8 weights. s8s8: bit-exact with onnxruntime. u8s8, where onnxruntime's AVX2
    kernel saturates: vs onnx.reference (exact sums, but requantized in float64, so a rare
    element differs by one step at a rounding tie)."""
    w = _ints("int8", 16, 8, 3, 3, seed=11)
    model, feeds = _qconv_model(xt, "int8", w, 8, 9, True, kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    if xt == "int8":
        check_model(model, feeds, reference=False)
        return
    got = run_edgec(model, feeds)[0].astype(np.int32)
    diff = np.abs(got - run_reference(model, feeds)[0].astype(np.int32))
    assert diff.max() <= 1 and (diff != 0).mean() < 0.01


def test_qlinear_conv_uint8_weights_zero_point() -> None:
    """u8 weights with a non-zero per-channel zero point, x uint8: the generic path."""
    w = _ints("uint8", 6, 4, 3, 3, seed=12)
    model, feeds = _qconv_model("uint8", "uint8", w, 4, 8, True, kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    init = {i.name: i for i in model.graph.initializer}
    init["wz"].CopyFrom(helper.make_tensor("wz", T.UINT8, [6], [120, 128, 131, 100, 140, 127]))
    check_model(model, feeds, reference=False)


@pytest.mark.parametrize("wzp", [False, True])
def test_conv_integer(wzp: bool) -> None:
    names = ["x", "w", "xz"] + (["wz"] if wzp else [])
    inits = {"w": _ints("uint8", 5, 3, 3, 3, seed=13), "xz": np.array(12, np.uint8)}
    if wzp:
        inits["wz"] = np.array([1, 2, 3, 4, 200], np.uint8)
    m = make_model([helper.make_node("ConvInteger", names, ["y"], pads=[1, 1, 1, 1])],
                   [("x", T.UINT8, [1, 3, 6, 6])], [("y", T.INT32, None)], inits)
    check_model(m, {"x": _ints("uint8", 1, 3, 6, 6, seed=14)}, reference=True) if not wzp else \
        np.testing.assert_array_equal(run_edgec(m, {"x": _ints("uint8", 1, 3, 6, 6, seed=14)})[0],
                                      run_reference(m, {"x": _ints("uint8", 1, 3, 6, 6, seed=14)})[0])


@pytest.mark.parametrize("at,bt", [("uint8", "int8"), ("int8", "int8"), ("uint8", "uint8")])
@pytest.mark.parametrize("sa,sb", [([3, 20], [20, 17]), ([2, 3, 9], [9, 5]), ([1, 64], [64, 100]),
                                   ([33], [33, 21])])
def test_qlinear_matmul(at: str, bt: str, sa: list[int], sb: list[int]) -> None:
    n = sb[-1]
    b = _ints(bt, *sb, seed=15)
    if at == "uint8" and bt == "int8":
        b //= 2  # 7-bit: see the module docstring
    params = {"as": np.array(0.02, np.float32), "az": np.array(7 if at == "uint8" else -4, at),
              "b": b, "bs": np.linspace(0.001, 0.004, n).astype(np.float32), "bz": np.zeros(n, bt),
              "ys": np.array(0.5, np.float32), "yz": np.array(128 if at == "uint8" else 0, at)}
    names = ["a", "as", "az", "b", "bs", "bz", "ys", "yz"]
    m = make_model([helper.make_node("QLinearMatMul", names, ["y"])], [("a", QT[at], sa)],
                   [("y", QT[at], None)], params)
    check_model(m, {"a": _ints(at, *sa, seed=16)}, reference=False)


def test_matmul_integer_runtime() -> None:
    m = make_model([helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["y"])],
                   [("a", T.UINT8, [4, 10]), ("b", T.INT8, [10, 6]), ("az", T.UINT8, []), ("bz", T.INT8, [6])],
                   [("y", T.INT32, None)])
    check_model(m, {"a": _ints("uint8", 4, 10, seed=17), "b": _ints("int8", 10, 6, seed=18) // 4,
                    "az": np.array(9, np.uint8), "bz": np.arange(6).astype(np.int8)})


def test_blocked_quantization_shape_errors() -> None:
    """A blocked scale whose shape does not fit the input and block size: a one-line error."""
    m = make_model([helper.make_node("DequantizeLinear", ["x", "s"], ["y"], axis=1, block_size=2)],
                   [("x", T.INT8, [2, 5])], [("y", F, [2, 5])], {"s": np.ones((2, 2), np.float32)}, opset=21)
    with pytest.raises(ModelError, match=r"block_size 2 on axis 1 needs \[2, 3\]"):
        run_edgec(m, {"x": np.zeros((2, 5), np.int8)})


def test_results_match_onnxruntime_not_only_reference() -> None:
    """Sanity of the harness: ORT's QLinearConv output is what the helper compares against."""
    w = _ints("int8", 4, 2, 3, 3, seed=19) // 2
    model, feeds = _qconv_model("uint8", "int8", w, 2, 5, True, kernel_shape=[3, 3])
    got = run_edgec(model, feeds)[0]
    assert got.dtype == np.uint8 and np.array_equal(got, run_onnxruntime(model, feeds)[0])


@pytest.mark.parametrize("device", ["rpi4", "rpi3"])
def test_integer_kernels_arm(device: str) -> None:
    """QConvDirect (dense, strided depthwise) and QGemv under qemu: the same bits as on x86."""
    w = _ints("int8", 12, 8, 3, 3, seed=20) // 2
    model, feeds = _qconv_model("uint8", "int8", w, 8, 9, True, kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    check_model(model, feeds, device, reference=False)
    w = _ints("int8", 12, 1, 3, 3, seed=21) // 2
    model, feeds = _qconv_model("int8", "int8", w, 12, 9, True, kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                strides=[2, 2], group=12)
    check_model(model, feeds, device, reference=False)
    params = {"as": np.array(0.02, np.float32), "az": np.array(3, np.uint8), "b": _ints("int8", 37, 19, seed=22) // 2,
              "bs": np.linspace(0.001, 0.004, 19).astype(np.float32), "bz": np.zeros(19, np.int8),
              "ys": np.array(0.3, np.float32), "yz": np.array(100, np.uint8)}
    names = ["a", "as", "az", "b", "bs", "bz", "ys", "yz"]
    m = make_model([helper.make_node("QLinearMatMul", names, ["y"])],
                   [("a", T.UINT8, [1, 37])], [("y", T.UINT8, None)], params)
    check_model(m, {"a": _ints("uint8", 1, 37, seed=23)}, device, reference=False)


@pytest.mark.parametrize("at", ["uint8", "int8"])
@pytest.mark.parametrize("k", [64, 37, 3])
def test_qgemv_byte_quads(at: str, k: int) -> None:
    """A row vector times 7-bit weights: QGemv on vpmaddubsw quads on AVX2 hosts (A's bytes are
    the broadcast words; a partial last quad pads with the zero point), the pairs elsewhere."""
    from edgec.importer import import_model
    from edgec.kernels.int8.prepare import prepare_qconv
    from edgec.pipeline import run_pipeline
    from edgec.targets.profiles import host_profile

    n = 45
    params = {"as": np.array(0.03, np.float32), "az": np.array(9 if at == "uint8" else -7, at),
              "b": _ints("int8", k, n, seed=24) // 2, "bs": np.linspace(0.002, 0.01, n).astype(np.float32),
              "bz": np.zeros(n, np.int8), "ys": np.array(0.2, np.float32),
              "yz": np.array(120 if at == "uint8" else 3, at)}
    names = ["a", "as", "az", "b", "bs", "bz", "ys", "yz"]
    m = make_model([helper.make_node("QLinearMatMul", names, ["y"])], [("a", QT[at], [1, k])],
                   [("y", QT[at], None)], params)
    g = prepare_qconv(host_profile())(run_pipeline(import_model(m)))
    gemv = [nd for nd in g.nodes if nd.op == "QGemv"]
    assert len(gemv) == 1 and (gemv[0].attrs.get("dot") == "u8s8") == (host_profile().int8_dot == "u8s8")
    check_model(m, {"a": _ints(at, 1, k, seed=25)}, reference=False)


@pytest.mark.parametrize("device", ["host", "rpi4"])
def test_blocked_quantization(device: str) -> None:
    """Opset 21 blocked Q/DQ (one scale per `block_size` elements along `axis`, the last block
    short): a blocked int8 weight folded at import feeding MatMul, and a run-time blocked
    QuantizeLinear -> DequantizeLinear round trip with scales that are graph inputs."""
    rng = np.random.default_rng(9)
    w = rng.integers(-128, 128, (10, 6)).astype(np.int8)
    ws = rng.uniform(0.01, 0.05, (4, 6)).astype(np.float32)  # blocks of 3 rows: 3 + 3 + 3 + 1
    wz = rng.integers(-5, 5, (4, 6)).astype(np.int8)
    nodes = [helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wf"], axis=0, block_size=3),
             helper.make_node("MatMul", ["x", "wf"], ["y"]),
             helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], axis=1, block_size=4),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["x2"], axis=1, block_size=4)]
    m = make_model(nodes, [("x", T.FLOAT, [2, 10]), ("xs", T.FLOAT, [2, 3]), ("xz", T.UINT8, [2, 3])],
                   [("y", T.FLOAT, None), ("x2", T.FLOAT, None)], {"w": w, "ws": ws, "wz": wz}, opset=21)
    feeds = {"x": rng.uniform(-2, 2, (2, 10)).astype(np.float32),
             "xs": rng.uniform(0.01, 0.03, (2, 3)).astype(np.float32),
             "xz": rng.integers(100, 150, (2, 3)).astype(np.uint8)}
    check_model(m, feeds, device=device, reference=False)

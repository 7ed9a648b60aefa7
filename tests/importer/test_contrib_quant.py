"""onnxruntime's com.microsoft quantized ops (edgec/importer/contrib/qlinear.py, dynamic.py)
against onnxruntime (graph optimizations on, 1 thread): integer outputs equal or one step apart
at a .5 tie (onnxruntime folds the scales into one multiplier, edgec dequantizes each operand:
at least 95% exact), float outputs within 1e-4. Each test draws its data from its own seed (its
name), so the data do not depend on which tests ran before in the worker."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

import edgec
from edgec.driver import front_end
from edgec.errors import ModelError
from edgec.pipeline import run_pipeline, target_passes
from edgec.targets.profiles import get_profile, host_profile
from tests.helpers import assert_close

ort = pytest.importorskip("onnxruntime")
MS = "com.microsoft"
RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _seed(request: pytest.FixtureRequest) -> None:
    global RNG
    RNG = np.random.default_rng(zlib.crc32(request.node.name.encode()))


def _q(shape: list[int], dt: type = np.uint8) -> np.ndarray:
    lo, hi = (0, 256) if dt == np.uint8 else (-128, 128)
    return RNG.integers(lo, hi, shape).astype(dt)


def _run(nodes: list[onnx.NodeProto], feeds: dict[str, np.ndarray], outs: dict[str, tuple[int, list[int]]],
         inits: dict[str, np.ndarray], tmp: Path, device: str = "host") -> onnx.ModelProto:
    ins = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape)) for k, v in feeds.items()]
    g = helper.make_graph(nodes, "m", ins, [helper.make_tensor_value_info(k, t, s) for k, (t, s) in outs.items()],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    want = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)
    edgec.build(m, out_dir=tmp / "b", device=device)
    got = edgec.load(tmp / "b").run(feeds)
    for name, w in zip(outs, want):
        g_ = got[name]
        if np.issubdtype(w.dtype, np.integer):
            diff = np.abs(g_.astype(np.int32) - w.astype(np.int32))
            assert diff.max() <= 1 and (diff == 0).mean() >= 0.95, f"{name}: max {diff.max()}, exact {(diff == 0).mean():.3f}"
        else:
            assert_close(g_, w, 1e-4, name)
    return m


def _sz(prefix: str, s: float, z: int, dt: type = np.uint8) -> dict[str, np.ndarray]:
    return {f"{prefix}s": np.array(s, np.float32), f"{prefix}z": np.array(z, dt)}


@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
@pytest.mark.parametrize("dt,bshape", [(np.uint8, [1, 8, 4, 4]), (np.int8, [8, 1, 1])])
def test_qlinear_binary(op: str, dt: type, bshape: list[int], tmp_path: Path) -> None:
    inits = {**_sz("a", 0.05, 3, dt), **_sz("b", 0.03, -2 if dt == np.int8 else 120, dt), **_sz("c", 0.07, 5, dt)}
    n = helper.make_node(op, ["a", "as", "az", "b", "bs", "bz", "cs", "cz"], ["c"], domain=MS)
    tt = helper.np_dtype_to_tensor_dtype(np.dtype(dt))
    _run([n], {"a": _q([1, 8, 4, 4], dt), "b": _q(bshape, dt)}, {"c": (tt, [1, 8, 4, 4])}, inits, tmp_path)


@pytest.mark.parametrize("op,attrs", [("QLinearSigmoid", {}), ("QLinearLeakyRelu", {"alpha": 0.1}),
                                      ("QLinearSoftmax", {"axis": -1, "opset": 13}),
                                      ("QLinearGlobalAveragePool", {"channels_last": 0}),
                                      ("QLinearAveragePool", {"kernel_shape": [3, 3], "strides": [2, 2],
                                                              "pads": [1, 1, 1, 1], "count_include_pad": 1}),
                                      ("QLinearAveragePool", {"kernel_shape": [3, 3], "strides": [2, 2],
                                                              "pads": [1, 1, 1, 1], "count_include_pad": 0})])
def test_qlinear_unary(op: str, attrs: dict, tmp_path: Path) -> None:
    inits = {**_sz("x", 0.06, 100), **_sz("y", 0.02, 10)}
    if op == "QLinearSoftmax":
        inits.update(_sz("y", 1 / 256, 0))
    out = {"QLinearGlobalAveragePool": [1, 8, 1, 1], "QLinearAveragePool": [1, 8, 4, 4]}.get(op, [1, 8, 7, 7])
    n = helper.make_node(op, ["x", "xs", "xz", "ys", "yz"], ["y"], domain=MS, **attrs)
    _run([n], {"x": _q([1, 8, 7, 7])}, {"y": (T.UINT8, out)}, inits, tmp_path)


def test_qlinear_concat(tmp_path: Path) -> None:
    inits = {**_sz("y", 0.05, 128), **_sz("a", 0.04, 120), **_sz("b", 0.06, 100), **_sz("c", 0.05, 128)}
    n = helper.make_node("QLinearConcat", ["ys", "yz", "a", "as", "az", "b", "bs", "bz", "c", "cs", "cz"], ["y"],
                         domain=MS, axis=1)
    _run([n], {"a": _q([1, 2, 3, 3]), "b": _q([1, 3, 3, 3]), "c": _q([1, 1, 3, 3])}, {"y": (T.UINT8, [1, 6, 3, 3])},
         inits, tmp_path)


@pytest.mark.parametrize("per_column,quantized_out,alpha", [(False, True, 1.0), (True, True, 1.0),
                                                            (True, False, 1.0), (False, True, 0.5)])
def test_qgemm(per_column: bool, quantized_out: bool, alpha: float, tmp_path: Path) -> None:
    bs = np.linspace(0.01, 0.02, 6).astype(np.float32) if per_column else np.array(0.015, np.float32)
    inits = {**_sz("a", 0.05, 128), "b": _q([6, 10], np.int8), "bs": bs, "bz": np.zeros(bs.shape, np.int8),
             "c": RNG.integers(-300, 300, 6).astype(np.int32), **_sz("y", 0.3, 128)}
    ins = ["a", "as", "az", "b", "bs", "bz", "c"] + (["ys", "yz"] if quantized_out else [])
    n = helper.make_node("QGemm", ins, ["y"], domain=MS, transB=1, alpha=alpha)
    out = (T.UINT8 if quantized_out else T.FLOAT, [4, 6])
    _run([n], {"a": _q([4, 10])}, {"y": out}, inits, tmp_path)


@pytest.mark.parametrize("per_column", [False, True])
def test_dynamic_quantize_matmul(per_column: bool, tmp_path: Path) -> None:
    bs = np.linspace(0.01, 0.02, 6).astype(np.float32) if per_column else np.array(0.015, np.float32)
    inits = {"b": _q([10, 6], np.int8), "bs": bs, "bz": np.zeros(bs.shape, np.int8), "bias": RNG.normal(0, 1, 6).astype(np.float32)}
    n = helper.make_node("DynamicQuantizeMatMul", ["a", "b", "bs", "bz", "bias"], ["y"], domain=MS)
    _run([n], {"a": RNG.normal(0, 1, (3, 4, 10)).astype(np.float32)}, {"y": (T.FLOAT, [3, 4, 6])}, inits, tmp_path)


def test_matmul_integer_to_float(tmp_path: Path) -> None:
    inits = {"b": _q([10, 6], np.int8), "as": np.array(0.04, np.float32), "bs": np.array(0.02, np.float32),
             "az": np.array(120, np.uint8), "bz": np.array(0, np.int8)}
    n = helper.make_node("MatMulIntegerToFloat", ["a", "b", "as", "bs", "az", "bz"], ["y"], domain=MS)
    _run([n], {"a": _q([4, 10])}, {"y": (T.FLOAT, [4, 6])}, inits, tmp_path)


@pytest.mark.parametrize("device", ["host", "x86_64-avx512", "rpi4"])
@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_dynamic_quantize_lstm(direction: str, device: str, tmp_path: Path) -> None:
    """Exact to float rounding: edgec re-quantizes the state before every recurrent product,
    as onnxruntime does (without that step the outputs differ by ~1e-2). With VNNI the
    recurrent product and the input projection are integer ones (edgec/kernels/rnn/recurrent_dot.py); rpi4
    keeps the float path (under qemu)."""
    if device == "x86_64-avx512" and host_profile().int8_dot != "vnni":
        pytest.skip("needs an AVX-512 VNNI host")
    d, i, h, s = (2 if direction == "bidirectional" else 1), 8, 16, 6

    def quant(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sc = (np.abs(w).reshape(d, -1).max(1) / 127).astype(np.float32)
        return np.clip(np.round(w / sc[:, None, None]), -127, 127).astype(np.int8), sc

    wq, ws = quant(RNG.normal(0, 0.3, (d, i, 4 * h)).astype(np.float32))
    rq, rs = quant(RNG.normal(0, 0.3, (d, h, 4 * h)).astype(np.float32))
    inits = {"w": wq, "r": rq, "bias": RNG.normal(0, 0.1, (d, 8 * h)).astype(np.float32), "ws": ws,
             "wz": np.zeros(d, np.int8), "rs": rs, "rz": np.zeros(d, np.int8)}
    n = helper.make_node("DynamicQuantizeLSTM", ["x", "w", "r", "bias", "", "h0", "c0", "", "ws", "wz", "rs", "rz"],
                         ["y", "yh", "yc"], domain=MS, direction=direction, hidden_size=h)
    feeds = {"x": RNG.normal(0, 1, (s, 1, i)).astype(np.float32), "h0": RNG.normal(0, 0.5, (d, 1, h)).astype(np.float32),
             "c0": RNG.normal(0, 0.5, (d, 1, h)).astype(np.float32)}
    m = _run([n], feeds, {"y": (T.FLOAT, [s, d, 1, h]), "yh": (T.FLOAT, [d, 1, h]), "yc": (T.FLOAT, [d, 1, h])},
             inits, tmp_path, device)
    g = front_end(m, None, lambda _: None, None).graph
    g = run_pipeline(g, target_passes(get_profile(device if device != "host" else "x86_64-avx512")))
    dots = [(x.attrs.get("recurrent_dot"), x.attrs.get("projected")) for x in g.nodes if x.op == "LSTM"]
    assert dots == ([(None, None)] if device == "rpi4" else [("vnni", True)])  # W x on byte dots too


def test_softmax_over_another_axis_is_refused(tmp_path: Path) -> None:
    n = helper.make_node("QLinearSoftmax", ["x", "xs", "xz", "ys", "yz"], ["y"], domain=MS, axis=1, opset=13, name="sm")
    g = helper.make_graph([n], "m", [helper.make_tensor_value_info("x", T.UINT8, [1, 4, 5])],
                          [helper.make_tensor_value_info("y", T.UINT8, [1, 4, 5])],
                          [numpy_helper.from_array(v, k) for k, v in {**_sz("x", 0.1, 0), **_sz("y", 1 / 256, 0)}.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)])
    with pytest.raises(ModelError, match="'sm'.*axis 1"):
        edgec.build(m, out_dir=tmp_path / "b")


@pytest.mark.parametrize("op,ins", [("QLinearAdd", ["a", "as"]), ("DynamicQuantizeLSTM", ["a", "w", "r"]),
                                    ("QGemm", ["a"]), ("FusedConv", ["a"])])
def test_missing_inputs_name_the_node(op: str, ins: list[str], tmp_path: Path) -> None:
    n = helper.make_node(op, ins, ["y"], domain=MS, name="bad")
    g = helper.make_graph([n], "m", [helper.make_tensor_value_info("a", T.FLOAT, [1, 4, 4, 4])],
                          [helper.make_tensor_value_info("y", T.FLOAT, [1, 4, 4, 4])],
                          [numpy_helper.from_array(v, k) for k, v in {"as": np.array(0.1, np.float32),
                                                                      "w": np.zeros((1, 4, 16), np.int8),
                                                                      "r": np.zeros((1, 4, 16), np.int8)}.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)])
    with pytest.raises(ModelError, match=rf"'bad'.*{op} is missing input"):
        edgec.build(m, out_dir=tmp_path / "b")

"""`--weights int8|fp16` (edgec/optimize/weight_quant.py): Gemv and GRU with compressed weights.

Two comparisons per case:
- tight: against onnxruntime / numpy on a model whose fp32 weights are the *same* quantized
  values (q * s per output row, or the fp16-rounded weights): only summation order and the fast
  math differ, so the project's 1e-4 tolerance holds (quantization errors are ~100x larger, and
  each case also checks that the result really moved away from fp32);
- loose: against the fp32 model, with the bound of weight-only rounding: |q s - w| <= s / 2 per
  weight, so a dot product moves by at most (s_n / 2) * sum_k |x_k| (fp16: 2^-11 |w|).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.models.sampling_net import prune_blocks, sampling_net
from edgec.optimize.weight_quant import dequantize, quantize_columns
from tests.helpers import assert_close, make_model, rand, run_edgec, run_onnxruntime

F = T.FLOAT


def _gemv_model(w: np.ndarray, bias: np.ndarray) -> onnx.ModelProto:
    k, n = w.shape
    nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["y0"]), helper.make_node("Relu", ["y0"], ["y"])]
    return make_model(nodes, [("x", F, [1, k])], [("y", F, [1, n])], {"W": w, "b": bias})


@pytest.mark.parametrize("fmt", ["int8", "fp16"])
def test_gemv_weights(fmt: str) -> None:
    k, n = 301, 100  # odd K (unroll tail), N not a multiple of the column block (tail block)
    w, bias = rand(k, n, seed=1, low=-0.5, high=0.5), rand(n, seed=2, low=-0.5, high=0.5)
    x = rand(1, k, seed=3)
    if fmt == "int8":
        q, s = quantize_columns(w, axis=0)  # one scale per output unit n
        wq = dequantize(q, s, axis=0)
        loose = s.astype(np.float64) / 2 * np.abs(x).sum()
    else:
        wq = w.astype(np.float16).astype(np.float32)
        loose = 2.0 ** -11 * (np.abs(x) @ np.abs(w)).astype(np.float64).ravel()
    got = run_edgec(_gemv_model(w, bias), {"x": x}, weights=fmt)[0]
    want = np.maximum(x.astype(np.float64) @ wq + bias, 0.0)
    assert_close(got, want.astype(np.float32), 1e-5, f"Gemv {fmt} vs numpy of the same weights")
    fp32 = np.maximum(x.astype(np.float64) @ w + bias, 0.0)
    err = np.abs(got - fp32).ravel()
    assert (err <= loose + 1e-5).all(), f"{fmt}: error {err.max():.3g} above the rounding bound"
    assert err.max() > 1e-5, "weights were not compressed"


def _gru_net(h: int, sparse: bool) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """Three GRU nodes on X [T=4, B=2, I=24]: lbr 0 forward, lbr 1 bidirectional with initial
    state, lbr 1 with R pruned to 75% zero 1x8 blocks (block-sparse when `sparse`)."""
    t, b, i = 4, 2, 24
    nodes, inits, outs = [], {}, []
    for k, (lbr, direction, init_h) in enumerate([(0, "forward", False), (1, "bidirectional", True),
                                                  (1, "forward", False)]):
        d = 2 if direction == "bidirectional" else 1
        inits[f"W{k}"] = rand(d, 3 * h, i, seed=10 * k + 1, low=-0.6, high=0.6)
        r = rand(d, 3 * h, h, seed=10 * k + 2, low=-0.6, high=0.6)
        if k == 2 and sparse:
            r[0] = prune_blocks(r[0], 0.75)
        inits[f"R{k}"] = r
        inits[f"B{k}"] = rand(d, 6 * h, seed=10 * k + 3, low=-0.5, high=0.5)
        ins = ["X", f"W{k}", f"R{k}", f"B{k}"]
        if init_h:
            inits[f"h0{k}"] = rand(d, b, h, seed=10 * k + 4, low=-0.9, high=0.9)
            ins += ["", f"h0{k}"]
        nodes.append(helper.make_node("GRU", ins, [f"Y{k}", f"Yh{k}"], hidden_size=h,
                                      linear_before_reset=lbr, direction=direction))
        outs += [(f"Y{k}", F, None), (f"Yh{k}", F, None)]
    model = make_model(nodes, [("X", F, [t, b, i])], outs, inits)
    return model, {"X": rand(t, b, i, seed=99)}


def _dequantized(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same model with W and R replaced by q * s (int8, one scale per output row)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for init in m.graph.initializer:
        if init.name[0] in "WR":
            w = onnx.numpy_helper.to_array(init)
            q, s = quantize_columns(w, axis=2)
            init.CopyFrom(onnx.numpy_helper.from_array(dequantize(q, s, axis=2), init.name))
    return m


@pytest.mark.parametrize("sparse", [False, True])
def test_gru_int8(sparse: bool) -> None:
    model, feeds = _gru_net(24, sparse)  # H = 24: padded to 32 units (zero columns)
    got = run_edgec(model, feeds, weights="int8", sparsity="bsr" if sparse else "off")
    same = run_onnxruntime(_dequantized(model), feeds)
    fp32 = run_onnxruntime(model, feeds)
    for k, (g, want, ref) in enumerate(zip(got, same, fp32)):
        assert_close(g, want, 1e-4, f"output {k} vs onnxruntime on the same int8 weights")
        # loose: per step a gate's pre-activation moves by <= (s/2)(sum|x| + sum|h|) ~ 0.05 here
        # (|x| <= 2, |h| <= 1, s ~ 0.6/127); sigmoid/tanh are 1-Lipschitz and the GRU mixes
        # old and new state, so 4 steps stay well inside 0.1 (measured: ~0.01).
        assert_close(g, ref, 0.1, f"output {k} vs fp32 onnxruntime")
    assert max(float(np.abs(g - r).max()) for g, r in zip(got, fp32)) > 1e-4, "weights not int8"


def test_gru_int8_aarch64() -> None:
    """The same kernels under qemu-aarch64 (NEON: sxtl + scvtf widening)."""
    from tests.conftest import arm_available

    if not arm_available("rpi4"):
        pytest.skip("aarch64-linux-gnu-gcc and qemu-aarch64 not installed")
    model, feeds = _gru_net(16, sparse=True)
    got = run_edgec(model, feeds, device="rpi4", weights="int8", sparsity="bsr")
    for k, (g, want) in enumerate(zip(got, run_onnxruntime(_dequantized(model), feeds))):
        assert_close(g, want, 1e-4, f"output {k} (aarch64) vs onnxruntime on the same int8 weights")


def _steps(bundle_dir, steps: int) -> np.ndarray:  # noqa: ANN001
    import edgec

    runner = edgec.load(bundle_dir)
    rng = np.random.default_rng(5)
    h1, h2 = np.zeros((1, 1, 384), np.float32), np.zeros((1, 1, 16), np.float32)
    probs = []
    for _ in range(steps):
        out = runner.run({"input": rng.uniform(-1, 1, (1, 1, 128)).astype(np.float32), "h1": h1, "h2": h2})
        h1, h2 = out["h1_out"], out["h2_out"]
        probs.append(out["output"][0])
    return np.array(probs)


def test_sampling_net_int8_accuracy(tmp_path) -> None:  # noqa: ANN001
    """The sampling net over 100 steps with the GRU states fed back, int8 vs fp32 weights (both
    edgec). Bound: the softmax over 256 levels of this seeded net has probabilities <= ~0.011;
    the GRU states move by ~1e-2 (test_gru_int8), the logits by a few 1e-2, so each probability
    by a few percent of itself: <= 5e-4 abs (measured 8.3e-5 = 1.6% relative over 300 steps);
    argmax agrees on >= 90% of the steps (measured 98%: near-ties flip)."""
    import edgec

    model = sampling_net(stateful=True)
    edgec.build(model, out_dir=tmp_path / "fp32", name="sn32")
    edgec.build(model, out_dir=tmp_path / "int8", name="sn8", weights="int8")
    p32, p8 = _steps(tmp_path / "fp32", 100), _steps(tmp_path / "int8", 100)
    diff = float(np.abs(p32 - p8).max())
    agree = float((p32.argmax(1) == p8.argmax(1)).mean())
    print(f"sampling net int8 vs fp32, 100 steps: max |softmax diff| {diff:.3g}, argmax agreement {agree:.0%}")
    assert 0 < diff <= 5e-4
    assert agree >= 0.9


def test_weights_option_errors() -> None:
    from edgec.errors import EdgecError

    model = _gemv_model(rand(8, 8), rand(8))
    with pytest.raises(EdgecError, match="--weights 'int4'"):
        run_edgec(model, {"x": rand(1, 8)}, weights="int4")
    with pytest.raises(EdgecError, match="exclude each other"):
        run_edgec(model, {"x": rand(1, 8)}, weights="int8", quantize="fp16")


def _lstm_model(w: np.ndarray, r: np.ndarray, hidden: int) -> onnx.ModelProto:
    t, i = 6, w.shape[2]
    node = helper.make_node("LSTM", ["x", "W", "R"], ["y"], hidden_size=hidden, direction="bidirectional")
    return make_model([node], [("x", F, [t, 1, i])], [("y", F, [t, 2, 1, hidden])], {"W": w, "R": r})


@pytest.mark.parametrize("per", ["direction", "column"])
def test_exact_int8_lstm_weights(per: str) -> None:
    """fp32 builds keep int8-valued LSTM weights (a dequantized int8 model) as int8 with their
    own scales: the kernel reads a quarter of the bytes and the result is that of the fp32
    weights up to summation order. Float weights stay fp32."""
    from edgec.importer import import_model
    from edgec.pipeline import run_pipeline, target_passes
    from edgec.targets.profiles import host_profile

    hidden, i = 24, 20
    rng = np.random.default_rng(5)
    shape = (2, 4 * hidden)
    scales = [rng.uniform(1e-3, 1e-2, shape[:1] + (1,) if per == "direction" else shape).astype(np.float32)
              for _ in range(2)]
    ws = []
    for s, k in zip(scales, (i, hidden)):
        q = rng.integers(-127, 128, (2, 4 * hidden, k)).astype(np.float32)
        q[:, :, 0] = 127  # the scale's own maximum, as symmetric quantizers make it
        ws.append((q * s[:, :, None]).astype(np.float32))
    model = _lstm_model(ws[0], ws[1], hidden)
    g = run_pipeline(run_pipeline(import_model(model)), target_passes(host_profile()))
    assert [n.attrs.get("weights") for n in g.nodes if n.op == "LSTM"] == ["int8"]
    x = rand(6, 1, i, seed=6)
    assert_close(run_edgec(model, {"x": x})[0], run_onnxruntime(model, {"x": x})[0], 1e-4)
    floats = _lstm_model(ws[0] + rand(*ws[0].shape, seed=7, low=-1e-4, high=1e-4), ws[1], hidden)
    g = run_pipeline(run_pipeline(import_model(floats)), target_passes(host_profile()))
    assert [n.attrs.get("weights") for n in g.nodes if n.op == "LSTM"] == [None]

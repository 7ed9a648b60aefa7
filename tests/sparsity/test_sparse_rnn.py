"""The GRU/LSTM/RNN recurrent weight's dense/BSR choice (target pass sparsify-rnn) follows the
sparsity cost rule and the build flags (--sparsity, --sparse-threshold) and shows in --dump-ir;
BSR results equal the dense build's and onnxruntime's."""

from __future__ import annotations

import ast
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper

import edgec
from edgec.errors import EdgecError
from edgec.models.sampling_net import prune_blocks
from tests.helpers import assert_close, rand, run_onnxruntime

H, NI, STEPS = 48, 24, 3


def gru_model(r: np.ndarray, seed: int = 0) -> onnx.ModelProto:
    """One GRU (linear_before_reset 1, initial state from the caller) with the given R."""
    rng = np.random.default_rng(seed)
    inits = {"W": (rng.standard_normal((1, 3 * H, NI)) / np.sqrt(NI)).astype(np.float32), "R": r,
             "B": rng.uniform(-0.1, 0.1, (1, 6 * H)).astype(np.float32)}
    node = helper.make_node("GRU", ["x", "W", "R", "B", "", "h0"], ["y", "yh"], hidden_size=H,
                            linear_before_reset=1, name="gru")
    g = helper.make_graph([node], "gru", [helper.make_tensor_value_info("x", T.FLOAT, [STEPS, 1, NI]),
                                          helper.make_tensor_value_info("h0", T.FLOAT, [1, 1, H])],
                          [helper.make_tensor_value_info("y", T.FLOAT, [STEPS, 1, 1, H]),
                           helper.make_tensor_value_info("yh", T.FLOAT, [1, 1, H])],
                          [onnx.numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def pruned_r(sparsity: float, seed: int = 3) -> np.ndarray:
    r = (np.random.default_rng(seed).standard_normal((3 * H, H)) / np.sqrt(H)).astype(np.float32)
    return prune_blocks(r, sparsity)[None]


FEEDS = {"x": rand(STEPS, 1, NI, seed=5), "h0": rand(1, 1, H, seed=6)}


def _dict_after(line: str, key: str) -> dict | None:
    """The {...} literal printed after `key` in a --dump-ir line (None when absent)."""
    if key + "{" not in line:
        return None
    start = line.index(key + "{") + len(key)
    depth = 0
    for end, ch in enumerate(line[start:], start):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth == 0:
            return ast.literal_eval(line[start:end + 1])
    raise AssertionError(f"unbalanced braces in {line!r}")


def build(model: onnx.ModelProto, tmp: Path, tag: str, **kw: object) -> tuple[list[np.ndarray], dict | None]:
    """Outputs of the bundle and the GRU's `sparse` attribute as --dump-ir prints it."""
    dumps: list[str] = []
    b = edgec.build(model, out_dir=tmp / tag, name="m", dump_ir=dumps.append, **kw)
    text = next(d for d in dumps if d.startswith("== after sparsify-rnn"))
    line = next(ln for ln in text.splitlines() if "GRU(" in ln)
    attr = _dict_after(line, "sparse=")
    out = edgec.load(b.path).run(FEEDS)
    return [out["y"], out["yh"]], attr


def test_auto_off_and_forced() -> None:
    model = gru_model(pruned_r(0.8))
    want = run_onnxruntime(model, FEEDS)
    with tempfile.TemporaryDirectory() as tmp:
        auto, a_auto = build(model, Path(tmp), "auto")
        off, a_off = build(model, Path(tmp), "off", sparsity="off")
        forced, a_code = build(gru_model(pruned_r(0.3)), Path(tmp), "code", sparsity="code")
        dense_03, a_dense = build(gru_model(pruned_r(0.3)), Path(tmp), "dense03")
    assert a_auto["format"] == "bsr" and a_auto["reason"] == "lowest estimated cost"
    assert abs(a_auto["density"] - 0.2) < 0.01 and a_auto["cost"]["bsr"] < a_auto["cost"]["dense"]
    assert a_off == {"format": "dense", "density": a_auto["density"], "blocks": "1x8",
                     "reason": "--sparsity off"}
    # 70% of the blocks non-zero: the rule keeps the dense panels; forcing gives BSR
    assert a_dense["format"] == "dense" and a_dense["cost"]["dense"] < a_dense["cost"]["bsr"]
    assert a_code["format"] == "bsr" and "no weights-in-code kernel" in a_code["reason"]
    for k in range(2):
        assert_close(auto[k], off[k], 1e-5, f"output {k}: bsr vs dense")
        assert_close(auto[k], want[k], 1e-4, f"output {k}: bsr vs onnxruntime")
        assert_close(forced[k], dense_03[k], 1e-5, f"output {k}: forced bsr vs dense")


def test_threshold() -> None:
    """Near-zero blocks (|w| <= 1e-7) count as zero only with --sparse-threshold."""
    r = pruned_r(0.8)
    tiny = np.random.default_rng(9).uniform(-1e-7, 1e-7, r.shape).astype(np.float32)
    model = gru_model(np.where(r == 0, tiny, r).astype(np.float32))
    want = run_onnxruntime(model, FEEDS)
    with tempfile.TemporaryDirectory() as tmp:
        plain, a_plain = build(model, Path(tmp), "plain")
        thr, a_thr = build(model, Path(tmp), "thr", sparse_threshold=1e-6)
    assert a_plain is None  # no zero block: not analyzed, dense
    assert a_thr is not None and a_thr["format"] == "bsr" and abs(a_thr["density"] - 0.2) < 0.01
    for k in range(2):
        assert_close(thr[k], want[k], 1e-4, f"output {k}: thresholded bsr vs onnxruntime")
        assert_close(plain[k], want[k], 1e-4, f"output {k}: dense vs onnxruntime")


def test_bad_flag() -> None:
    with tempfile.TemporaryDirectory() as tmp, pytest.raises(EdgecError, match="--sparsity"):
        edgec.build(gru_model(pruned_r(0.8)), out_dir=Path(tmp) / "x", sparsity="sometimes")

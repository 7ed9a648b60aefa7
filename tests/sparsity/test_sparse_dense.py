"""SparseDense kernels (weights in code, BSR) against edgec's dense build, onnxruntime and
onnx.reference; the cost rule's choices; the code-size fallback; the reported .text size."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

import edgec
from edgec.sparsity import SparseOptions, analyze
from edgec.sparsity.cost import block_width, choose
from edgec.sparsity.report import kernel_sizes
from edgec.targets import get_profile
from tests.helpers import assert_close, check_model, rand
from tests.sparsity.models import dense_layer, sparse_weight


def _build(model, tmp: Path, tag: str, device: str = "host", **kw):  # noqa: ANN001, ANN202
    dumps: list[str] = []
    b = edgec.build(model, device=device, out_dir=tmp / tag, name="m", dump_ir=dumps.append, **kw)
    text = next(d for d in dumps if d.startswith("== after sparsify-dense"))
    return b, text


def _run(bundle, x: np.ndarray) -> np.ndarray:  # noqa: ANN001
    return edgec.load(bundle.path).run({"x": x})["y"]


@pytest.mark.parametrize("fmt,act,gemm,n", [
    ("code", None, False, 64),
    ("code", "Tanh", True, 100),  # N not a multiple of 8: partial last vector
    ("bsr", "Relu", False, 100),
    ("bsr", None, True, 64),
])
def test_sparse_equals_dense_and_onnxruntime(fmt: str, act: str | None, gemm: bool, n: int) -> None:
    w = sparse_weight(96, n, 0.25, seed=n)
    model = dense_layer(w, act=act, gemm=gemm)
    x = rand(1, 96, seed=3)
    with tempfile.TemporaryDirectory() as tmp:
        sparse, dump = _build(model, Path(tmp), "sparse", sparsity=fmt)
        dense, dump_dense = _build(model, Path(tmp), "dense", sparsity="off")
        assert dump.count("SparseDense(") == 1 and "SparseDense" not in dump_dense
        assert f"'format': '{fmt}'" in dump
        ys, yd = _run(sparse, x), _run(dense, x)
    assert_close(ys, yd, 1e-5, f"{fmt} vs edgec dense")
    check_model(model, {"x": x}, sparsity=fmt)


def test_rank3_input_no_bias_auto() -> None:
    model = dense_layer(sparse_weight(64, 48, 0.2, seed=5), bias=False, rank3=True)
    check_model(model, {"x": rand(1, 1, 64, seed=4)})


@pytest.mark.parametrize("device,fmt", [("rpi4", "code"), ("rpi4", "bsr"), ("rpi3", "code")])
def test_arm_under_qemu(device: str, fmt: str) -> None:
    model = dense_layer(sparse_weight(64, 40, 0.25, seed=7), act="Sigmoid")
    check_model(model, {"x": rand(1, 64, seed=8)}, device=device, sparsity=fmt)


def test_cost_rule_choices() -> None:
    host = get_profile("host")
    bw = block_width(host)
    auto = SparseOptions()
    blocks80 = choose(analyze(sparse_weight(256, 256, 0.2), bw), host, auto)
    assert blocks80.format == "code" and abs(blocks80.density - 0.2) < 0.03
    unstructured90 = choose(analyze(sparse_weight(256, 256, 0.1, unstructured=True), bw), host, auto)
    assert unstructured90.format == "code"  # ~57% of the 1x8 blocks are non-zero: code still wins
    assert unstructured90.density > blocks80.density
    nearly_dense = choose(analyze(sparse_weight(256, 256, 0.9), bw), host, auto)
    assert nearly_dense.format == "dense" and "density" in nearly_dense.reason
    big = analyze(sparse_weight(1024, 1024, 0.3, seed=2), bw)
    big_choice = choose(big, host, auto)  # code would be ~90 KB of .text: BSR instead
    assert big_choice.text_bytes_est > auto.code_limit and big_choice.format == "bsr"
    assert "limit" in big_choice.reason
    assert choose(big, host, SparseOptions(code_limit=1 << 20)).format == "code"
    arm = get_profile("rpi4")
    assert block_width(arm) == 4 and choose(analyze(sparse_weight(256, 256, 0.2), 4), arm, auto).format == "code"


def test_dense_weights_stay_matmul_and_threshold() -> None:
    w = sparse_weight(64, 32, 1.0, seed=9)
    with tempfile.TemporaryDirectory() as tmp:
        b, dump = _build(dense_layer(w), Path(tmp), "dense")
        assert "SparseDense" not in dump and "sparse=" not in dump  # no zeros: not even analyzed
        # Tiny weights count as zero only with a threshold; the result is the thresholded model's.
        w_small = sparse_weight(64, 32, 0.25, seed=10)
        w_small[w_small == 0] = 1e-7
        x = rand(1, 64, seed=11)
        _, dump0 = _build(dense_layer(w_small), Path(tmp), "t0")
        bt, dump_t = _build(dense_layer(w_small), Path(tmp), "t1", sparse_threshold=1e-6)
        assert "SparseDense" not in dump0 and "SparseDense(" in dump_t
        w_thr = np.where(np.abs(w_small) <= 1e-6, 0, w_small).astype(np.float32)
        bref, _ = _build(dense_layer(w_thr), Path(tmp), "ref", sparsity="off")
        assert_close(_run(bt, x), _run(bref, x), 1e-5, "thresholded")


def test_code_size_fallback_and_reported_text() -> None:
    model = dense_layer(sparse_weight(128, 128, 0.2, seed=12), act="Relu")
    x = rand(1, 128, seed=13)
    with tempfile.TemporaryDirectory() as tmp:
        code, dump = _build(model, Path(tmp), "code")
        small, dump_small = _build(model, Path(tmp), "small", sparse_code_limit=2000)
        assert "'format': 'code'" in dump and "'format': 'bsr'" in dump_small and "limit" in dump_small
        est = int(dump.split("'text_bytes_est': ")[1].split(",")[0])
        code_size = kernel_sizes(code.path / "obj" / "m_kernels.o")["functions"]["m_k0_sparsedense"]
        bsr_size = kernel_sizes(small.path / "obj" / "m_kernels.o")["functions"]["m_k0_sparsedense"]
        assert est / 2 <= code_size <= 2 * est, (est, code_size)  # the estimate bounds the real size
        assert bsr_size < 1024 < code_size  # BSR code does not grow with the weights
        assert_close(_run(small, x), _run(code, x), 1e-5, "bsr vs code")
        again, _ = _build(model, Path(tmp), "again")
        assert (again.path / "obj/m_kernels.o").read_bytes() == (code.path / "obj/m_kernels.o").read_bytes()

"""Bundles built with --threads N: a pthread pool in the runtime, kernels split into tasks.
Results must be bit-identical to the single-thread bundle (tasks own disjoint outputs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import edgec
from edgec.errors import RunError
from edgec.models import mobilenet_v2
from tests.helpers import assert_close, run_onnxruntime


@pytest.fixture(scope="module")
def small_mobilenet():
    return mobilenet_v2(resolution=64, width=0.5, num_classes=10, seed=0)


@pytest.mark.parametrize("device", ["host", "rpi4"])
def test_two_threads_bit_identical(tmp_path: Path, small_mobilenet, device: str) -> None:
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    one = edgec.build(small_mobilenet, device=device, out_dir=tmp_path / "t1")
    two = edgec.build(small_mobilenet, device=device, out_dir=tmp_path / "t2", threads=2)
    assert two.manifest["build_options"]["threads"] == 2
    assert (two.path / "src" / "edgec_threads.c").is_file() and not (one.path / "src" / "edgec_threads.c").exists()
    y1 = edgec.load(one.path).run({"input": x})["output"]
    y2 = edgec.load(two.path).run({"input": x})["output"]
    np.testing.assert_array_equal(y1, y2)
    assert_close(y2, run_onnxruntime(small_mobilenet, {"input": x})[0], 1e-4, "2 threads vs onnxruntime")


def test_two_threads_bit_identical_int8(tmp_path: Path, small_mobilenet) -> None:
    """The int8 kernels split across threads too (byte quads, pointwise, strided and small-plane
    convs, depthwise): the same bits as one thread, and as onnxruntime (7-bit weights)."""
    from edgec.models.ort_quant import calibration_inputs, quantize_qdq

    q = quantize_qdq(small_mobilenet, "uint8", reduce_range=True, calibration=calibration_inputs((1, 3, 64, 64), 2))
    x = np.random.default_rng(2).standard_normal((1, 3, 64, 64)).astype(np.float32)
    one = edgec.build(q, out_dir=tmp_path / "t1")
    two = edgec.build(q, out_dir=tmp_path / "t2", threads=2)
    y1 = edgec.load(one.path).run({"input": x})["output"]
    y2 = edgec.load(two.path).run({"input": x})["output"]
    np.testing.assert_array_equal(y1, y2)
    assert_close(y2, run_onnxruntime(q, {"input": x})[0], 1e-4, "int8, 2 threads vs onnxruntime")


def test_runtime_thread_override(tmp_path: Path, small_mobilenet) -> None:
    x = np.random.default_rng(1).standard_normal((1, 3, 64, 64)).astype(np.float32)
    two = edgec.build(small_mobilenet, out_dir=tmp_path / "t2", threads=2)
    ref = edgec.load(two.path, num_threads=1).run({"input": x})["output"]
    for n in (2, 3, 4):
        runner = edgec.load(two.path, num_threads=n)
        for _ in range(3):  # the pool is reused across runs
            np.testing.assert_array_equal(runner.run({"input": x})["output"], ref)
        runner.close()
    one = edgec.build(small_mobilenet, out_dir=tmp_path / "t1")
    with pytest.raises(RunError, match="thread"):
        edgec.load(one.path, num_threads=2)

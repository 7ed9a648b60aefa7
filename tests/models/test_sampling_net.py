"""The LPCNet-like sampling net generator: block pruning, and edgec vs onnxruntime over several
autoregressive steps with the GRU states fed back."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from onnx import numpy_helper

import edgec
from edgec.models import MODELS
from edgec.models.sampling_net import prune_blocks, sampling_net
from tests.helpers import assert_close, check_model, rand, run_onnxruntime


def test_prune_blocks_1x8() -> None:
    w = rand(48, 20, seed=3)
    p = prune_blocks(w, 0.8, 8)
    blocks = p.reshape(6, 8, 20)
    nonzero = np.abs(blocks).sum(axis=1) > 0          # [6, 20] blocks
    assert nonzero.sum() == 24                         # 20% of 120 blocks kept
    kept = np.repeat(nonzero, 8, axis=0)
    assert np.array_equal(p[kept], w[kept]) and not p[~kept].any()
    norms = np.sqrt((w.reshape(6, 8, 20) ** 2).sum(axis=1))
    assert norms[nonzero].min() >= norms[~nonzero].max()  # the largest blocks survive


def test_generator_options() -> None:
    assert MODELS["sampling_net"] is sampling_net
    dense, pruned = sampling_net(), sampling_net(sparsity=0.8)
    r_dense, r_pruned = (numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == "R1"))
                         for m in (dense, pruned))
    assert np.count_nonzero(r_dense) == 3 * 384 * 384
    assert np.count_nonzero(r_pruned) == round(0.2 * 3 * 384 * 384 / 8) * 8
    assert sampling_net(seed=1).SerializeToString() == sampling_net(seed=1).SerializeToString()
    with pytest.raises(ValueError):
        sampling_net(sparsity=1.0)


@pytest.mark.parametrize("sparsity", [0.0, 0.8])
def test_steps_with_state_vs_onnxruntime(sparsity: float) -> None:
    model = sampling_net(seed=2, sparsity=sparsity, stateful=True)
    h1, h2 = np.zeros((1, 1, 384), np.float32), np.zeros((1, 1, 16), np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        edgec.build(model, device="host", out_dir=Path(tmp) / "b")
        runner = edgec.load(Path(tmp) / "b")
        for step in range(3):
            feeds = {"input": rand(1, 1, 128, seed=step), "h1": h1, "h2": h2}
            got = runner.run(feeds)
            want = run_onnxruntime(model, feeds)
            for k, name in enumerate(["output", "h1_out", "h2_out"]):
                assert_close(got[name], want[k], what=f"step {step} {name}")
            h1, h2 = want[1], want[2]
            assert abs(float(got["output"].sum()) - 1.0) < 1e-5


def test_aarch64() -> None:
    from tests.conftest import arm_available

    if not arm_available("rpi4"):
        pytest.skip("aarch64-linux-gnu-gcc and qemu-aarch64 not installed")
    model = sampling_net(seed=3, sparsity=0.8, stateful=True)
    feeds = {"input": rand(1, 1, 128, seed=1), "h1": rand(1, 1, 384, seed=2, low=-1, high=1),
             "h2": rand(1, 1, 16, seed=3, low=-1, high=1)}
    check_model(model, feeds, device="rpi4")

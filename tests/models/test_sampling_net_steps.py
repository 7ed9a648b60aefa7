"""examples/sampling_net_steps.c compiled with the target's gcc against a built bundle of the
stateful sampling net: N steps with the GRU states fed back, compared with onnxruntime stepping
the same model N times in Python (host, and aarch64 under qemu)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

import edgec
from edgec.models.sampling_net import sampling_net
from edgec.targets import get_profile
from edgec.toolchain import find_toolchain
from edgec.toolchain.cc import run_binary
from tests.helpers import assert_close, rand

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sampling_net_steps.c"
STEPS = 6


def ort_steps(model: onnx.ModelProto, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """onnxruntime, one run per frame, h1/h2 fed back (zeros first): (probs [N, 256], h1, h2)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    h1 = np.zeros((1, 1, 384), np.float32)
    h2 = np.zeros((1, 1, 16), np.float32)
    probs = []
    for x in frames:
        p, h1, h2 = sess.run(["output", "h1_out", "h2_out"], {"input": x.reshape(1, 1, -1), "h1": h1, "h2": h2})
        probs.append(p[0])
    return np.stack(probs), h1, h2


def lcg_frames(n: int) -> np.ndarray:
    """The example's default input sequence (no FRAMES.bin), re-computed here."""
    seed, out = 12345, []
    for _ in range(n * 128):
        seed = (seed * 1664525 + 1013904223) % 2**32
        out.append(np.float32(seed >> 8) / np.float32(1 << 23) - np.float32(1.0))
    return np.array(out, np.float32).reshape(n, 128)


def build_example(tmp: Path, device: str) -> tuple[Path, onnx.ModelProto]:
    model = sampling_net(seed=1, sparsity=0.8, stateful=True)
    b = edgec.build(model, device=device, out_dir=tmp / "bundle", name="sampnet")
    profile = get_profile(device)
    find_toolchain(profile).link_executable(
        "steps", [str(EXAMPLE), str(b.path / "lib" / "libsampnet.a")], tmp,
        [str(b.path / "include")])
    return tmp / "steps", model


@pytest.mark.parametrize("device", ["host", "rpi4"])
def test_steps_match_onnxruntime(device: str, tmp_path: Path) -> None:
    exe, model = build_example(tmp_path, device)
    profile = get_profile(device)
    frames = rand(STEPS, 128, seed=7)
    frames.tofile(tmp_path / "frames.bin")
    r = run_binary(profile, [str(exe), str(STEPS), "frames.bin", "probs.bin", "states.bin"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    words = r.stdout.decode().split()
    assert words[:2] == ["steps", str(STEPS)] and words[4] == "min_us", words
    probs = np.fromfile(tmp_path / "probs.bin", np.float32).reshape(STEPS, 256)
    states = np.fromfile(tmp_path / "states.bin", np.float32)
    want_p, want_h1, want_h2 = ort_steps(model, frames)
    # the state feedback matters: step 2 onwards differs from running each frame from zero state
    assert np.abs(want_p[1] - ort_steps(model, frames[1:2])[0][0]).max() > 1e-3
    assert_close(probs, want_p, 1e-4, f"probabilities over {STEPS} steps ({device})")
    assert_close(states[:384].reshape(1, 1, 384), want_h1, 1e-4, "final h1")
    assert_close(states[384:].reshape(1, 1, 16), want_h2, 1e-4, "final h2")
    assert int(words[3]) == int(np.argmax(probs[-1]))
    if device != "host":
        return
    # default frames (`-`), a bad step count, a short frames file
    r = run_binary(profile, [str(exe), "3", "-", "p3.bin"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    p3 = np.fromfile(tmp_path / "p3.bin", np.float32).reshape(3, 256)
    assert_close(p3, ort_steps(model, lcg_frames(3))[0], 1e-4, "default frames")
    bad = run_binary(profile, [str(exe), "0"], cwd=tmp_path)
    assert bad.returncode == 2 and b"usage" in bad.stderr
    short = run_binary(profile, [str(exe), "9", "frames.bin"], cwd=tmp_path)
    assert short.returncode == 2 and b"expected exactly" in short.stderr

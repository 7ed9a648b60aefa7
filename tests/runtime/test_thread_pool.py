"""The runtime's thread pool (edgec_threads.c): a C stress test of parallel_for (natively, under
ThreadSanitizer, and under qemu for aarch64/armv7), and --threads 2 bundles of models with and
without parallel kernels run many times in a row, re-initialized, against the 1-thread bundle
(bit-identical) and onnxruntime. No timings: the pool's latency is measured in benchmarks/."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper

import edgec
from edgec.packager.bundle import RUNTIME_DIR
from edgec.targets import get_profile
from edgec.toolchain import find_toolchain, run_binary
from tests.helpers import assert_close, make_model, run_onnxruntime

STRESS_C = Path(__file__).with_name("pool_stress.c")
# The runtime with the pool compiled in, as a --threads N bundle builds it.
RUNTIME_WITH_THREADS = '#define EDGEC_THREADS 1\n#include "edgec_runtime.c"\n'


def _stress_sources(tmp_path: Path) -> list[str]:
    (tmp_path / "runtime_threads.c").write_text(RUNTIME_WITH_THREADS)
    return ["runtime_threads.c", str(RUNTIME_DIR / "edgec_threads.c"), str(STRESS_C)]


def _check_stress_output(proc: subprocess.CompletedProcess) -> None:
    out = proc.stdout.decode() + proc.stderr.decode()
    assert proc.returncode == 0, out
    m = re.search(r"^(\d+) failures, (\d+) jobs$", out, re.M)
    assert m and m.group(1) == "0" and int(m.group(2)) > 0, out


# (device, graph runs per init cycle, iterations of a long serial stretch): qemu is ~10x slower.
@pytest.mark.parametrize("device,runs,gap", [("host", 20, 300_000), ("rpi4", 4, 30_000),
                                             ("rpi3", 4, 30_000)])
def test_pool_stress(tmp_path: Path, device: str, runs: int, gap: int) -> None:
    profile = get_profile(device)
    tc = find_toolchain(profile)
    tc.link_executable("stress", _stress_sources(tmp_path), tmp_path, [str(RUNTIME_DIR)],
                       static=device != "host")
    _check_stress_output(run_binary(profile, [str(tmp_path / "stress"), str(runs), str(gap)],
                                    cwd=tmp_path, timeout=240))


def test_pool_stress_thread_sanitizer(tmp_path: Path) -> None:
    """Every handoff of job data between the caller and the workers is a happens-before edge."""
    cc = shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no gcc or clang for a ThreadSanitizer build")
    cmd = [cc, "-std=c99", "-O1", "-g", "-fsanitize=thread", f"-I{RUNTIME_DIR}",
           *_stress_sources(tmp_path), "-pthread", "-o", "stress_tsan"]
    build = subprocess.run(cmd, cwd=tmp_path, capture_output=True)
    if build.returncode != 0:
        pytest.skip(f"this compiler cannot build with -fsanitize=thread: {build.stderr.decode()[:300]}")
    proc = subprocess.run([str(tmp_path / "stress_tsan"), "3", "100000"], cwd=tmp_path,
                          capture_output=True, timeout=240)
    assert b"ThreadSanitizer" not in proc.stderr, proc.stderr.decode()[:4000]
    _check_stress_output(proc)


def _undefined_symbols(lib: Path) -> set[str]:
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) not found")
    out = subprocess.run([nm, "-u", "-D" if lib.suffix == ".so" else "-u", str(lib)],
                         capture_output=True, check=True).stdout.decode()
    return {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}


def _elementwise_model() -> onnx.ModelProto:
    """No parallel kernels at all: the pool must stay idle and cost nothing."""
    nodes = [helper.make_node("Mul", ["x", "s"], ["a"]), helper.make_node("Tanh", ["a"], ["b"]),
             helper.make_node("Add", ["b", "x"], ["c"]), helper.make_node("Sigmoid", ["c"], ["y"])]
    return make_model(nodes, [("x", T.FLOAT, [1, 8, 37])], [("y", T.FLOAT, [1, 8, 37])],
                      {"s": np.float32(0.7) * np.ones((1, 8, 37), np.float32)})


def _gemv_model() -> onnx.ModelProto:
    """Batch-1 dense layers with serial ops between them: the first (393k multiply-adds) is split
    into tasks, the second is below PARALLEL_MIN_MACS and runs on the caller."""
    rng = np.random.default_rng(3)
    w1 = (rng.standard_normal((512, 768)) / 24).astype(np.float32)
    w2 = (rng.standard_normal((768, 40)) / 28).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Tanh", ["h"], ["t"]),
             helper.make_node("Mul", ["t", "t"], ["q"]), helper.make_node("MatMul", ["q", "w2"], ["z"]),
             helper.make_node("Relu", ["z"], ["y"])]
    return make_model(nodes, [("x", T.FLOAT, [1, 512])], [("y", T.FLOAT, [1, 40])],
                      {"w1": w1, "w2": w2})


@pytest.mark.parametrize("parallel", [False, True], ids=["no-parallel-kernels", "gemv-tasks"])
def test_many_runs_and_reinit(tmp_path: Path, parallel: bool) -> None:
    model = _gemv_model() if parallel else _elementwise_model()
    one = edgec.build(model, out_dir=tmp_path / "t1", name="m")
    two = edgec.build(model, out_dir=tmp_path / "t2", name="m", threads=2)
    # The test covers what it says: kernels handed to the pool exist exactly in the Gemv model.
    kernels = _undefined_symbols(two.path / "obj" / "m_kernels.o")
    assert ("edgec_parallel_for" in kernels) == parallel, sorted(kernels)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.standard_normal(shape).astype(np.float32)} for _ in range(150)]
    r1 = edgec.load(one.path)
    want = [r1.run(f)["y"] for f in feeds]
    r1.close()
    assert_close(want[7], run_onnxruntime(model, feeds[7])[0], 1e-4, "1 thread vs onnxruntime")
    for cycle, threads in enumerate((2, 3, 2, 4)):  # deinit + init: new workers every cycle
        runner = edgec.load(two.path, num_threads=threads)
        for k in range(len(feeds)):
            i = (k * 7 + cycle) % len(feeds)
            got = runner.run(feeds[i])["y"]
            if not np.array_equal(got, want[i]):
                pytest.fail(f"{threads} threads, run {k}: differs from the 1-thread bundle by "
                            f"{np.abs(got - want[i]).max()}")
        runner.close()
        runner.close()  # a second close is a no-op


def test_single_thread_bundle_has_no_pthreads(tmp_path: Path) -> None:
    one = edgec.build(_gemv_model(), out_dir=tmp_path / "t1", name="m")
    two = edgec.build(_gemv_model(), out_dir=tmp_path / "t2", name="m", threads=2)
    assert not {s for s in _undefined_symbols(one.shared_library) if s.startswith("pthread_")}
    assert "pthread_create" in _undefined_symbols(two.shared_library)

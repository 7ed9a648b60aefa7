"""Build time (docs/build_time.md): one LLVM module per kernel, compiled on worker processes and
kept in the object cache. Whatever the cache holds and however many processes compile, the
bundle is the same bytes; a damaged or missing entry is compiled again; a changed weight or
attribute never reuses a stale object."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper
from typer.testing import CliRunner

import edgec
from edgec.cli import app
from edgec.codegen import compile_pool
from edgec.codegen.kernel_key import kernel_key
from edgec.importer import import_model
from edgec.options import BuildOptions
from edgec.pipeline import run_pipeline
from edgec.targets import get_profile
from tests.helpers import make_model, run_onnxruntime


def _net(seed: int = 0, k: int = 3):
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((8, 3, k, k)).astype(np.float32) * 0.3
    w2 = rng.standard_normal((10, 8 * 6 * 6)).astype(np.float32) * 0.1
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[5, 5], pads=[2, 2, 2, 2]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "w2"], ["y"], transB=1)]
    return make_model(nodes, [("x", T.FLOAT, [1, 3, 12, 12])], [("y", T.FLOAT, [1, 10])], {"w1": w1, "w2": w2})


def _files(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "objects"
    monkeypatch.setenv("EDGEC_CACHE_DIR", str(d))
    return d


@pytest.mark.parametrize("device", ["host", "rpi4"])
def test_cold_warm_parallel_serial_same_bytes(tmp_path: Path, cache_dir: Path, device: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compile_pool, "PARALLEL_MIN_IR_BYTES", 0)  # the pool even for a small net
    serial = edgec.build(_net(), device=device, out_dir=tmp_path / "serial", cache=False, jobs=1)
    assert not cache_dir.exists()  # cache=False writes nothing
    cold = edgec.build(_net(), device=device, out_dir=tmp_path / "cold", jobs=2)
    stats = cold.report.targets[device]
    assert stats.cached == 0 and stats.jobs == 2 and len(list(cache_dir.rglob("*.o"))) == stats.kernels + 2
    warm = edgec.build(_net(), device=device, out_dir=tmp_path / "warm", jobs=2)
    w = warm.report.targets[device]
    assert w.cached == w.kernels + 1 and "llvm" in w.seconds and w.seconds["llvm"] < 0.5
    ref = _files(serial.path)
    for b in (cold, warm):
        got = _files(b.path)
        assert got.keys() == ref.keys()
        assert [k for k in ref if ref[k] != got[k]] == []


def test_damaged_entry_is_compiled_again(tmp_path: Path, cache_dir: Path) -> None:
    a = edgec.build(_net(), out_dir=tmp_path / "a")
    entries = sorted(cache_dir.rglob("*.o"))
    # two code objects (kernels or graph_run: they name kernel symbols), never the weights object,
    # which `cached` does not count (entries are named by key hashes, so their order says nothing)
    code = [p for p in entries if b"model_k" in p.read_bytes()]
    assert len(code) == len(entries) - 1
    code[0].write_bytes(code[0].read_bytes()[:-7])  # truncated
    code[1].write_bytes(b"")
    b = edgec.build(_net(), out_dir=tmp_path / "b")
    assert b.report.targets["host"].cached == len(entries) - 2 - 1  # the weights object is not counted
    assert _files(a.path) == _files(b.path)
    x = np.random.default_rng(1).standard_normal((1, 3, 12, 12)).astype(np.float32)
    np.testing.assert_allclose(edgec.load(b.path).run({"x": x})["y"], run_onnxruntime(_net(), {"x": x})[0],
                               rtol=1e-4, atol=1e-4)


def test_changed_weights_and_attributes_never_reuse_objects(tmp_path: Path, cache_dir: Path) -> None:
    x = np.random.default_rng(2).standard_normal((1, 3, 12, 12)).astype(np.float32)
    for i, (seed, k) in enumerate([(0, 3), (1, 3), (0, 5)]):
        m = _net(seed, k)
        if k == 5:  # a 5x5 kernel with the same output size
            m.graph.node[0].attribute[0].ints[:] = [2, 2, 2, 2]
        b = edgec.build(m, out_dir=tmp_path / str(i))
        np.testing.assert_allclose(edgec.load(b.path).run({"x": x})["y"], run_onnxruntime(m, {"x": x})[0],
                                   rtol=1e-4, atol=1e-4)


def test_kernel_key_covers_data_and_target() -> None:
    g = run_pipeline(import_model(_net()))
    node = g.nodes[0]
    args = [*node.inputs, *node.outputs]

    def key(graph=g, target="host", opts=BuildOptions()):  # noqa: ANN001, ANN202
        return kernel_key(graph, node, args, "m_k0", False, get_profile(target), opts, "m", 3)

    base = key()
    assert base == key() and len(base) == 64
    assert key(target="rpi4") != base and key(opts=BuildOptions(fast_math=False)) != base
    g2 = run_pipeline(import_model(_net(seed=1)))
    assert key(graph=g2) != base  # same shapes, other weights
    node.attrs["unkeyable"] = object()
    assert key() is None  # compiled, never cached


def test_dead_worker_and_llvm_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compile_pool, "PARALLEL_MIN_IR_BYTES", 0)
    profile = get_profile("host")
    text = "define void @f(float* %p) {\n  store float 1.0, float* %p\n  ret void\n}\n"
    dead = compile_pool._Worker()
    dead.proc.kill()
    dead.proc.wait()
    compile_pool._idle.append(dead)
    lost: list[int] = []
    objs = compile_pool.emit_objects(profile, 3, [text, text.replace("@f", "@g")], 2, lost)
    assert [o[:4] for o, _ in objs] == [b"\x7fELF"] * 2 and lost == [1]  # the dead worker's module, here
    with pytest.raises(RuntimeError, match="parsing error|expected"):
        compile_pool.emit_objects(profile, 3, [text, "define void @h( {"], 2)


def test_cli_timings_and_no_cache(tmp_path: Path, cache_dir: Path) -> None:
    import onnx

    onnx.save(_net(), tmp_path / "m.onnx")
    r = CliRunner().invoke(app, ["build", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "b"), "--no-cache",
                                 "--timings", "--json", "-j", "1"])
    assert r.exit_code == 0, r.output
    t = json.loads(r.stdout)["timings"]["targets"]["host"]
    assert t["cached"] == 0 and t["jobs"] == 1 and {"ir", "llvm", "weights"} <= set(t["seconds"])
    assert not cache_dir.exists()
    r = CliRunner().invoke(app, ["build", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "c"), "--timings"])
    assert r.exit_code == 0 and "build time" in r.output and "LLVM:" in r.output, r.output

"""Bad input gets one clear line, a non-zero exit code, no traceback, and nothing half-written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper

from tests.helpers import make_model


def edgec_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "edgec.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=300)


def assert_clean_failure(proc: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    text = proc.stderr
    assert "Traceback" not in text and "Traceback" not in proc.stdout, text
    for n in needles:
        assert n in text, f"{n!r} not in {text!r}"


@pytest.fixture()
def relu_model(tmp_path: Path) -> Path:
    m = make_model([helper.make_node("Relu", ["input"], ["y"])], [("input", T.FLOAT, [2, 3])], [("y", T.FLOAT, [2, 3])])
    p = tmp_path / "relu.onnx"
    onnx.save(m, p)
    return p


def test_not_onnx(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_text("this is not a model\n" * 10)
    out = tmp_path / "out"
    assert_clean_failure(edgec_cli("build", str(bad), "-o", str(out)), 2, "not a readable ONNX model")
    assert not out.exists()


def test_truncated_model(tmp_path: Path, relu_model: Path) -> None:
    m = make_model([helper.make_node("Add", ["input", "w"], ["y"])], [("input", T.FLOAT, [64, 64])],
                   [("y", T.FLOAT, [64, 64])], {"w": np.ones((64, 64), np.float32)})
    data = m.SerializeToString()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    proc = edgec_cli("build", str(cut), "-o", str(out))
    assert_clean_failure(proc, 2, "error:")
    assert not out.exists()


def test_missing_file(tmp_path: Path) -> None:
    assert_clean_failure(edgec_cli("build", str(tmp_path / "nope.onnx")), 2, "not found")


def test_unsupported_ops_listed_at_once(tmp_path: Path) -> None:
    nodes = [helper.make_node("Det", ["x"], ["d"]),
             helper.make_node("Einsum", ["x", "x"], ["e"], equation="ij,jk->ik"),
             helper.make_node("Relu", ["x"], ["r"])]
    m = make_model(nodes, [("x", T.FLOAT, [3, 3])], [("d", T.FLOAT, None), ("e", T.FLOAT, None), ("r", T.FLOAT, None)])
    p = tmp_path / "m.onnx"
    onnx.save(m, p)
    out = tmp_path / "out"
    proc = edgec_cli("build", str(p), "-o", str(out))
    assert_clean_failure(proc, 2, "unsupported ops (2)", "Det", "Einsum")
    assert "Relu" not in proc.stderr
    assert not out.exists()


def test_dynamic_dim_needs_input_shape(tmp_path: Path) -> None:
    m = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", T.FLOAT, ["batch", 4])], [("y", T.FLOAT, ["batch", 4])])
    p = tmp_path / "dyn.onnx"
    onnx.save(m, p)
    out = tmp_path / "out"
    assert_clean_failure(edgec_cli("build", str(p), "-o", str(out)), 2, "--input-shape", "batch")
    assert not out.exists()
    ok = edgec_cli("build", str(p), "-o", str(out), "--input-shape", "x=3,4")
    assert ok.returncode == 0, ok.stderr
    assert_clean_failure(edgec_cli("build", str(p), "-o", str(out), "--input-shape", "nope=3,4"), 2, "unknown input")


def test_unknown_device(tmp_path: Path, relu_model: Path) -> None:
    out = tmp_path / "out"
    assert_clean_failure(edgec_cli("build", str(relu_model), "--device", "toaster", "-o", str(out)),
                         2, "unknown device 'toaster'", "rpi4")
    assert not out.exists()


def test_missing_cross_compiler_names_package(tmp_path: Path, relu_model: Path) -> None:
    out = tmp_path / "out"
    proc = edgec_cli("build", str(relu_model), "--device", "rpi4", "-o", str(out),
                     env={"EDGEC_CC_AARCH64": "no-such-gcc"})
    assert_clean_failure(proc, 2, "no-such-gcc", "apt-get install gcc-aarch64-linux-gnu")
    assert not out.exists()


def test_refuses_to_overwrite_non_bundle(tmp_path: Path, relu_model: Path) -> None:
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert_clean_failure(edgec_cli("build", str(relu_model), "-o", str(out)), 2, "refusing to overwrite")
    assert (out / "notes.txt").read_text() == "keep me"


def test_build_summary_and_run_errors(tmp_path: Path, relu_model: Path) -> None:
    out = tmp_path / "bundle"
    proc = edgec_cli("build", str(relu_model), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    for word in ("kernels", "weights", "code (.text)", "arena"):
        assert word in proc.stderr
    x = tmp_path / "x.npy"
    np.save(x, np.arange(6, dtype=np.float32).reshape(2, 3) - 3)
    ok = edgec_cli("run", str(out), "--input", f"input={x}", "--json")
    assert ok.returncode == 0, ok.stderr
    assert '"max": 2.0' in ok.stdout and '"min": 0.0' in ok.stdout
    assert_clean_failure(edgec_cli("run", str(out), "--input", f"wrong={x}"), 2, "unknown ['wrong']", "input")
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, 2), np.float32))
    assert_clean_failure(edgec_cli("run", str(out), "--input", f"input={bad}"), 2, "shape [3, 2]", "[2, 3]")
    assert_clean_failure(edgec_cli("run", str(tmp_path)), 2, "not an edgec bundle")
    # A modified bundle file is caught by the sha256 check.
    lib = out / "lib" / "libmodel.so"
    lib.write_bytes(lib.read_bytes() + b"\0")
    assert_clean_failure(edgec_cli("run", str(out), "--input", f"input={x}"), 2, "sha256")


_NO_CLICK = """
import sys
sys.modules["click"] = None  # `import click` fails, as on a fresh install (typer vendors click)
import edgec.compiler
def boom(*a, **k):
    raise ValueError("unexpected\\nsecond line")
edgec.compiler.build = boom
from edgec.cli import main
sys.argv = ["edgec", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("debug", [False, True])
def test_unexpected_error_is_one_line_without_click(tmp_path: Path, relu_model: Path, debug: bool) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k != "EDGEC_DEBUG"} | ({"EDGEC_DEBUG": "1"} if debug else {})
    proc = subprocess.run([sys.executable, "-c", _NO_CLICK, "build", str(relu_model), "-o", str(tmp_path / "o")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr
    if debug:
        assert "Traceback" in proc.stderr and "ValueError" in proc.stderr
    else:
        assert proc.stderr.strip().splitlines() == [
            "error: internal error: ValueError: unexpected (set EDGEC_DEBUG=1 for the traceback)"], proc.stderr
    usage = subprocess.run([sys.executable, "-c", _NO_CLICK, "build", str(relu_model), "--threads", "abc"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr and "--threads" in usage.stderr


def test_api_raises_only_edgec_errors(tmp_path: Path, relu_model: Path) -> None:
    import edgec
    from edgec.errors import EdgecError

    bad_calls = [dict(model=b"garbage"), dict(model=relu_model, device=3), dict(model=relu_model, threads="2"),
                 dict(model=relu_model, name=None), dict(model=relu_model, input_shapes={"input": "a"}),
                 dict(model=relu_model, fast_math=3), dict(model=relu_model, no_such_option=1),
                 dict(model=relu_model, out_dir=3), dict(model=relu_model, sparse_threshold="x")]
    for kw in bad_calls:
        with pytest.raises(EdgecError):
            edgec.build(**{"out_dir": tmp_path / "o", **kw})
    for bad in (3, tmp_path / "missing", relu_model):
        with pytest.raises(EdgecError):
            edgec.load(bad)
    runner = edgec.load(edgec.build(relu_model, out_dir=tmp_path / "ok").path)
    for feeds in ([1, 2], {"input": "abc"}, {"input": np.zeros((2, 3), object)}, {"input": np.zeros(3)}):
        with pytest.raises(EdgecError):
            runner.run(feeds)

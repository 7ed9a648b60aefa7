"""Bundle layout, reproducibility, inspect, and the CMake project."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

import edgec
from edgec.packager.inspect import inspect_bundle
from tests.helpers import make_model


def _model():
    w = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    return make_model([helper.make_node("Mul", ["x", "w"], ["t"]), helper.make_node("Tanh", ["t"], ["y"])],
                      [("x", T.FLOAT, [4, 6])], [("y", T.FLOAT, [4, 6])], {"w": w})


@pytest.mark.parametrize("device", ["host", "rpi4", "rpi3"])
def test_byte_identical_rebuild(tmp_path: Path, device: str) -> None:
    """Two compiles from scratch (no object cache) give the same bytes."""
    a = edgec.build(_model(), device=device, out_dir=tmp_path / "a", cache=False)
    b = edgec.build(_model(), device=device, out_dir=tmp_path / "b", cache=False)
    files_a = sorted(p.relative_to(a.path) for p in a.path.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b.path) for p in b.path.rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert (a.path / rel).read_bytes() == (b.path / rel).read_bytes(), f"{rel} differs between builds"


def test_layout_and_manifest(tmp_path: Path) -> None:
    b = edgec.build(_model(), device="rpi4", out_dir=tmp_path / "b")
    for rel in ("manifest.json", "include/model.h", "include/edgec_runtime.h", "lib/libmodel.a",
                "src/edgec_runtime.c", "src/model_model.c", "CMakeLists.txt", "examples/main.c"):
        assert (b.path / rel).is_file(), rel
    m = json.loads((b.path / "manifest.json").read_text())
    assert m["target"]["triple"].startswith("aarch64") and m["device"] == "rpi4"
    assert m["inputs"][0] == {"name": "x", "dtype": "float32", "shape": [4, 6], "bytes": 96,
                              "arena_offset": m["inputs"][0]["arena_offset"]}
    assert m["weight_bytes"] >= 96 and len(m["model_sha256"]) == 64
    assert set(m["files"]) >= {"lib/libmodel.a", "include/model.h"}
    assert "#define MODEL_ARENA_BYTES" in (b.path / "include/model.h").read_text()


def test_inspect_reports_target(tmp_path: Path) -> None:
    info = inspect_bundle(edgec.build(_model(), device="rpi3", out_dir=tmp_path / "b").path)
    so = info["objects"]["lib/libmodel.so"]
    assert so["machine"] == "EM_ARM" and so["float_abi"] == "hard"
    assert {"model_init", "model_run", "model_set_input", "model_get_output", "model_info"} <= set(so["exported"])
    assert "model_weights" not in so["exported"]  # internal symbol
    assert info["objects"]["obj/model_kernels.o"]["sections"][".text"] > 0
    info64 = inspect_bundle(edgec.build(_model(), device="rpi4", out_dir=tmp_path / "c").path)
    assert info64["objects"]["lib/libmodel.so"]["machine"] == "EM_AARCH64"


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
def test_cmake_project_builds_and_runs(tmp_path: Path) -> None:
    b = edgec.build(_model(), device="host", out_dir=tmp_path / "b")
    build = tmp_path / "cmake-build"
    subprocess.run(["cmake", "-S", str(b.path), "-B", str(build)], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(4, 6)
    (tmp_path / "x.bin").write_bytes(x.tobytes())
    subprocess.run([str(build / "model_main"), str(tmp_path / "x.bin"), str(tmp_path / "y.bin")], check=True)
    y = np.frombuffer((tmp_path / "y.bin").read_bytes(), np.float32).reshape(4, 6)
    np.testing.assert_allclose(y, edgec.load(b.path).run({"x": x})["y"], rtol=0, atol=0)

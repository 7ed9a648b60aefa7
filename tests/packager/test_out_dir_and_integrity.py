"""`-o` replaces only a bundle edgec wrote, unmodified; a bundle's files are checked before they
are loaded, and its manifest must agree with the library (issue 14)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

import edgec
from edgec.errors import EdgecError
from tests.helpers import make_model


def _model():
    return make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", T.FLOAT, [2, 3])], [("y", T.FLOAT, [2, 3])])


def _snapshot(d: Path) -> dict[str, str]:
    return {p.relative_to(d).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgec.cli", *args], capture_output=True, text=True, timeout=300)


def test_foreign_directory_with_a_manifest_is_refused_and_kept(tmp_path: Path) -> None:
    out = tmp_path / "home"
    (out / "photos").mkdir(parents=True)
    (out / "photos" / "cat.jpg").write_bytes(b"\xff\xd8 cat")
    (out / "notes.txt").write_text("keep me")
    # A manifest that looks like ours (format tag, a files list) but does not describe the directory.
    (out / "manifest.json").write_text(json.dumps({"format_version": 1, "edgec_version": "0.1.0", "name": "model",
                                                   "files": {"notes.txt": "0" * 64}}))
    before = _snapshot(out)
    with pytest.raises(EdgecError, match="refusing to overwrite"):
        edgec.build(_model(), out_dir=out)
    assert _snapshot(out) == before
    onnx_path = tmp_path / "m.onnx"
    import onnx

    onnx.save(_model(), onnx_path)
    proc = _cli("build", str(onnx_path), "-o", str(out))
    assert proc.returncode == 2 and "refusing to overwrite" in proc.stderr and "Traceback" not in proc.stderr
    assert _snapshot(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".home.")]  # no staging dirs left


def test_own_bundle_is_replaced_but_not_once_the_user_added_files(tmp_path: Path) -> None:
    out = tmp_path / "b"
    edgec.build(_model(), out_dir=out)
    edgec.build(_model(), out_dir=out)  # an unmodified bundle of ours: replaced
    (out / "build").mkdir()
    (out / "build" / "CMakeCache.txt").write_text("user's cmake build")
    before = _snapshot(out)
    with pytest.raises(EdgecError, match="which edgec did not write"):
        edgec.build(_model(), out_dir=out)
    assert _snapshot(out) == before
    (out / "build" / "CMakeCache.txt").unlink()
    (out / "src" / "edgec_runtime.c").write_text("/* user's edit */")
    with pytest.raises(EdgecError, match="not an unmodified edgec bundle"):
        edgec.build(_model(), out_dir=out)
    assert (out / "src" / "edgec_runtime.c").read_text() == "/* user's edit */"


def test_out_dir_is_a_file_or_unwritable(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("data")
    with pytest.raises(EdgecError, match="not a directory"):
        edgec.build(_model(), out_dir=f)
    assert f.read_text() == "data"
    with pytest.raises(EdgecError):
        edgec.build(_model(), out_dir="/proc/edgec-bundle")


def _tampered(tmp_path: Path, edit) -> Path:  # noqa: ANN001
    b = edgec.build(_model(), out_dir=tmp_path / "b").path
    m = json.loads((b / "manifest.json").read_text())
    edit(b, m)
    return b


@pytest.mark.parametrize("what", ["no_files", "empty_files", "lib_unlisted", "arena", "shape", "dtype",
                                  "not_object", "flip_lib", "bad_json", "name", "traversal"])
def test_tampered_bundles_are_refused(tmp_path: Path, what: str) -> None:
    def edit(b: Path, m: dict) -> None:
        if what == "no_files":
            del m["files"]
        elif what == "empty_files":
            m["files"] = {}
        elif what == "lib_unlisted":
            del m["files"]["lib/libmodel.so"]
        elif what == "arena":
            m["arena_bytes"] = m["arena_bytes"] * 1000
        elif what == "shape":
            m["outputs"][0]["shape"] = [3, 3]
            m["outputs"][0]["bytes"] = 36
        elif what == "dtype":
            m["outputs"][0]["dtype"] = "object"
        elif what == "not_object":
            m = [m]  # type: ignore[assignment]
        elif what == "flip_lib":
            lib = b / "lib" / "libmodel.so"
            data = bytearray(lib.read_bytes())
            data[len(data) // 2] ^= 0xFF
            lib.write_bytes(bytes(data))
        elif what == "name":
            m["name"] = "model_info; rm -rf"
        elif what == "traversal":
            m["files"]["../outside"] = "0" * 64
        text = json.dumps(m)
        (b / "manifest.json").write_text(text[:-7] if what == "bad_json" else text)

    b = _tampered(tmp_path, edit)
    with pytest.raises(EdgecError):
        edgec.load(b).run({"x": np.ones((2, 3), np.float32)})
    # `inspect` reads the objects and reports what the manifest says: it refuses what it cannot
    # verify (file list, hashes, fields), not sizes that only the library itself can confirm.
    for cmd in (["run", str(b), "--random"], *([["inspect", str(b)]] if what not in ("arena", "shape") else [])):
        proc = _cli(*cmd)
        assert proc.returncode == 2, (cmd, proc.returncode, proc.stderr)
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr

"""Model files and external data (issue 14): unreadable files and external references that
point anywhere but a regular file inside the model's directory are a clean ModelError;
a valid external-data model still compiles and matches onnxruntime."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T

import edgec
from edgec.errors import ModelError
from edgec.importer import import_model, load_onnx
from tests.helpers import run_onnxruntime
from tests.importer.test_validation import base, init


def _error(model: object, *needles: str) -> str:
    with pytest.raises(ModelError) as exc:
        import_model(model)  # type: ignore[arg-type]
    msg = str(exc.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, f"{n!r} not in {msg!r}"
    return msg


# ---- the model file itself ---------------------------------------------------------------------
def test_unreadable_model_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    _error(empty, "is empty")
    _error(tmp_path, "is a directory")
    _error(tmp_path / "missing.onnx", "not found")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(bytes(range(256)) * 8)
    _error(garbage, "ONNX model")
    truncated = tmp_path / "truncated.onnx"
    data = base().SerializeToString()
    truncated.write_bytes(data[: len(data) // 2])
    _error(truncated, "ONNX model")
    fifo = tmp_path / "fifo.onnx"
    os.mkfifo(fifo)  # reading it would block for ever
    _error(fifo, "not a regular file")
    _error(str(tmp_path / "nul\0.onnx"), "cannot read model file")
    _error(12345, "must be a path or an onnx.ModelProto")


# ---- external data -----------------------------------------------------------------------------
def _external(tmp_path: Path, location: str, offset: int | None = 0, length: int | None = None,
              write: bool = True) -> Path:
    """The base model saved as m.onnx with tensor w stored in `location` (not written when
    `write` is False) and `offset`/`length` keys as given."""
    m = base()
    w = init(m, "w")
    if write:
        (tmp_path / location).write_bytes(b"\0" * 16 + w.raw_data)
    w.ClearField("raw_data")
    w.data_location = T.EXTERNAL
    entries = {"location": location, "offset": offset, "length": length}
    for k, v in entries.items():
        if v is not None:
            e = w.external_data.add()
            e.key, e.value = k, str(v)
    path = tmp_path / "m.onnx"
    path.write_bytes(m.SerializeToString())
    return path


def test_external_data_model_compiles_and_matches_onnxruntime(tmp_path: Path) -> None:
    m = base()
    saved = onnx.ModelProto()
    saved.CopyFrom(m)  # save_model moves the data out of the proto it saves
    path = tmp_path / "model.onnx"
    onnx.save_model(saved, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    assert init(onnx.load(path, load_external_data=False), "w").data_location == T.EXTERNAL
    proto = load_onnx(path)
    assert init(proto, "w").raw_data == init(m, "w").raw_data
    assert not any(t.data_location == T.EXTERNAL for t in proto.graph.initializer)
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    edgec.build(str(path), "host", tmp_path / "bundle")
    got = edgec.load(tmp_path / "bundle").run({"x": x})["y"]
    np.testing.assert_allclose(got, run_onnxruntime(m, {"x": x})[0], rtol=1e-5, atol=1e-5)
    # An offset into a shared file is fine too.
    _ = import_model(_external(tmp_path, "shared.bin", offset=16, length=432))


def test_external_data_outside_the_model_directory(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.bin").write_bytes(b"\0" * 4096)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    _error(_external(model_dir, "/etc/passwd", write=False), "is absolute")
    _error(_external(model_dir, str(outside / "secret.bin"), write=False), "is absolute")
    _error(_external(model_dir, "../outside/secret.bin", write=False), "contains '..'")
    _error(_external(model_dir, "sub/../../outside/secret.bin", write=False), "contains '..'")
    (model_dir / "link.bin").symlink_to(outside / "secret.bin")
    _error(_external(model_dir, "link.bin", write=False), "resolves outside the model's directory")
    (model_dir / "adir").mkdir()
    _error(_external(model_dir, "adir", write=False), "is a directory")
    _error(_external(model_dir, "missing.bin", write=False), "does not exist")
    _error(_external(model_dir, "", write=False), "is empty")


def test_external_data_ranges(tmp_path: Path) -> None:
    _error(_external(tmp_path, "w.bin", offset=100), "runs past the end")
    _error(_external(tmp_path, "w.bin", offset=16, length=1000), "length 1000 does not match")
    _error(_external(tmp_path, "w.bin", offset=2**62), "runs past the end")
    for text in ("-1", "1e3", " ", "9" * 40):
        _error(_external(tmp_path, "w.bin", offset=text), "not a non-negative integer")  # type: ignore[arg-type]


def test_external_data_header_is_checked_before_reading(tmp_path: Path) -> None:
    path = _external(tmp_path, "w.bin")
    m = onnx.load(path, load_external_data=False)
    init(m, "w").dims[0] = 2**40  # would ask for terabytes
    path.write_bytes(m.SerializeToString())
    _error(path, "dim 1099511627776")


def test_in_memory_model_with_external_references(tmp_path: Path) -> None:
    m = onnx.load(_external(tmp_path, "w.bin"), load_external_data=False)
    _error(m, "tensor 'w' keeps its data in an external file ('w.bin')", "in-memory")
    with pytest.raises(ModelError):
        load_onnx(m)

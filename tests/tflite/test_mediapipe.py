"""The TFLite corpus (tests/corpus/tflite_manifest.py): mediapipe's .tflite models built by
edgec and compared with the LiteRT interpreter (XNNPACK delegate on and off), for the host;
every model also builds for rpi4 and android-arm64, and two run there under qemu."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

import edgec
from edgec.errors import EdgecWarning, ModelError
from edgec.packager.inspect import inspect_bundle
from tests.corpus.manifest import model_file
from tests.corpus.tflite_manifest import TFLITE_MODELS, UNSUPPORTED
from tests.mobile.conftest import ANDROID_TOOLS, needs

BUILDS = [m for m in TFLITE_MODELS if m.name not in UNSUPPORTED]
QEMU_RUNS = ("face_detection_short_range", "selfie_segmentation")


def litert(path: Path, feeds: dict[str, np.ndarray], xnnpack: bool) -> dict[str, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    it = Interpreter(model_path=str(path), num_threads=1, experimental_op_resolver_type=kind)
    it.allocate_tensors()
    for d in it.get_input_details():
        it.set_tensor(d["index"], feeds[d["name"]])
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]).copy() for d in it.get_output_details()}


def inputs(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_path=str(path)).get_input_details()
    rng = np.random.default_rng(seed)
    return {d["name"]: rng.uniform(-1, 1, d["shape"]).astype(d["dtype"]) for d in details}


def close(got: dict[str, np.ndarray], want: dict[str, np.ndarray], what: str) -> None:
    assert got.keys() == want.keys(), what
    for k, w in want.items():
        g = got[k]
        assert g.shape == w.shape and g.dtype == w.dtype, f"{what} {k}: {g.shape} {g.dtype} vs {w.shape} {w.dtype}"
        err = float(np.abs(g.astype(np.float64) - w).max())
        assert err <= 1e-3 * max(float(np.abs(w).max()), 1e-6), f"{what} {k}: max abs error {err:.3g}"


@pytest.mark.parametrize("m", BUILDS, ids=lambda m: m.name)
def test_matches_litert(m, corpus_ready: None, tmp_path: Path) -> None:  # noqa: ANN001
    path = model_file(m)
    feeds = inputs(path)
    bundle = edgec.build(path, device="host", out_dir=tmp_path / "host")
    assert bundle.manifest["source_format"] == "tflite" == inspect_bundle(bundle.path)["source_format"]
    got = edgec.load(bundle.path).run(feeds)
    for xnnpack in (True, False):
        try:
            want = litert(path, feeds, xnnpack)
        except RuntimeError as exc:  # Convolution2DTransposeBias exists only in the XNNPACK delegate
            assert not xnnpack and "unresolved custom op: Convolution2DTransposeBias" in str(exc)
            continue
        close(got, want, f"{m.name} (XNNPACK {'on' if xnnpack else 'off'})")


@pytest.mark.parametrize("device", ["rpi4", pytest.param("android-arm64", marks=needs(*ANDROID_TOOLS))])
@pytest.mark.parametrize("m", BUILDS, ids=lambda m: m.name)
def test_builds_for_arm(m, device: str, corpus_ready: None, tmp_path: Path) -> None:  # noqa: ANN001
    path = model_file(m)
    bundle = edgec.build(path, device=device, out_dir=tmp_path / "b")
    if m.name not in QEMU_RUNS:
        return
    feeds = inputs(path, seed=1)
    want = litert(path, feeds, True)
    if device == "rpi4":
        got = edgec.load(bundle.path).run(feeds)
    else:
        from tests.mobile.driver import Driver

        d = Driver(bundle.path, device, dynamic=True)
        try:
            outs = d.run([feeds[k] for k in feeds], [(tuple(v.shape), v.dtype) for v in want.values()])
        finally:
            d.close()
        got = dict(zip(want, outs))
    close(got, want, f"{m.name} on {device}")


def test_unsupported_custom_ops_listed_at_once(corpus_ready: None) -> None:
    for name, ops in UNSUPPORTED.items():
        m = next(m for m in TFLITE_MODELS if m.name == name)
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore", EdgecWarning)
            with pytest.raises(ModelError, match="unsupported TFLite op") as exc:
                edgec.build(model_file(m), out_dir=Path(tmp) / "b")
            assert ops in str(exc.value) and not (Path(tmp) / "b").exists()

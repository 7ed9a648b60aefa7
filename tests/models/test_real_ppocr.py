"""The real PP-OCR models of `rapidocr_onnxruntime==1.4.4` (PP-OCRv4 det and rec, mobile v2.0
cls; paddle2onnx exports, opsets 11/12, dynamic input dims) built by edgec for the host and
compared with onnxruntime (and onnx.reference for rec and cls) on text-like images
preprocessed as RapidOCR does. det runs at 320x320 for test speed (benchmarks use 640x640)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun
from onnx.reference.ops.op_batch_normalization import _batchnorm_test_mode

from edgec.models import rapidocr
from tests.helpers import assert_close, run_edgec, run_onnxruntime

if any(rapidocr.model_path(k) is None for k in rapidocr.FILES):
    pytest.skip(f"rapidocr_onnxruntime models not installed ({rapidocr.INSTALL})",
                allow_module_level=True)
pytest.importorskip("onnxruntime")

SHAPES = {"det": (1, 3, 320, 320), "rec": (1, 3, 48, 320), "cls": (1, 3, 48, 192)}


class _BatchNormInference(OpRun):
    """onnx.reference (1.16-1.19) runs BatchNormalization-9..13 in *training* mode (batch
    statistics) whenever `momentum` is set, and its schema default sets it. With one output
    the op is inference-only in those opsets (paddle2onnx writes momentum anyway)."""

    op_domain = ""

    def _run(self, x, scale, bias, mean, var, epsilon=None, momentum=None,  # noqa: ANN001, ANN202
             training_mode=None):  # noqa: ANN001
        return (_batchnorm_test_mode(x, scale, bias, mean, var, epsilon=epsilon),)


def _reference(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    _BatchNormInference.__name__ = "BatchNormalization"
    ev = ReferenceEvaluator(model, new_ops=[_BatchNormInference])
    return np.asarray(ev.run(None, feeds)[0])


@pytest.mark.parametrize("kind", ["cls", "rec", "det"])
def test_real_ppocr_fp32(kind: str) -> None:
    shape = SHAPES[kind]
    # the untouched model file: edgec fixes the dynamic dims and ignores the exporter's -1 dims
    model = onnx.load(str(rapidocr.model_path(kind)))
    x = rapidocr.inputs(kind, 1, shape, seed=3)
    feeds = {"x": x}
    got = run_edgec(model, feeds, input_shapes={"x": list(shape)})[0]
    want = run_onnxruntime(rapidocr.load(kind, shape), feeds)[0]
    assert_close(got, want, 1e-4, f"{kind} vs onnxruntime")
    if kind != "det":  # onnx.reference takes minutes on det's 320x320 convs
        ref = _reference(rapidocr.load(kind, shape), feeds)
        assert_close(got, ref, 1e-4, f"{kind} vs onnx.reference")
    # the inputs exercise the model: text is found / read / classified with some confidence
    if kind == "det":
        assert got.shape == (1, 1, *shape[2:]) and 0.02 < float((got > 0.3).mean()) < 0.6
    elif kind == "rec":
        assert got.shape[0] == 1 and got.shape[2] == 6625
        np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-4)
    else:
        assert got.shape == (1, 2) and abs(float(got[0, 0] - got[0, 1])) > 0.05

"""edgec's own post-training quantization: calibration data (`data.py`), activation ranges
from running the float model (`calibrate.py`: min-max, percentile, entropy/KL), the QDQ writer
(`qdq_writer.py`, onnxruntime `quantize_static` QDQ format), the accuracy report
(`compare.py`) and fp16 weight storage (`fp16.py`). Needs onnxruntime for calibration."""

from __future__ import annotations

from edgec.quantize.data import load_calibration
from edgec.quantize.qdq_writer import QuantOptions, quantize_file, quantize_model

__all__ = ["QuantOptions", "load_calibration", "quantize_file", "quantize_model"]

"""QDQ models as onnxruntime's `quantize_static` writes them, from the project's generators:
the pre-quantized inputs of the int8 import tests and benchmarks. Needs onnxruntime (a test
extra); nothing else in edgec imports this module.

`reduce_range=True` keeps weights to 7 bits: onnxruntime's u8 x s8 kernels on AVX2 machines
without VNNI use vpmaddubsw, which saturates a pair of full-range products at int16, so only
7-bit weights give exact integer results there (onnxruntime's own advice for such machines).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx


def calibration_inputs(shape: tuple[int, ...], count: int = 4, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(count)]


def quantize_qdq(model: onnx.ModelProto, activations: str = "uint8", per_channel: bool = True,
                 reduce_range: bool = False, calibration: list[np.ndarray] | None = None) -> onnx.ModelProto:
    """`model` (input "input") -> QDQ model: BN folded into Conv by onnxruntime's pre-processing,
    weights int8 symmetric (per channel by default), activations `activations` (uint8 = u8s8,
    int8 = s8s8), min-max calibration on `calibration` (default: 4 seeded normal batches)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    dims = tuple(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim)
    batches = calibration if calibration is not None else calibration_inputs(dims)
    name = model.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{name: b} for b in batches])

        def get_next(self) -> dict | None:
            return next(self.it, None)

    act = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}[activations]
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # quantize_static logs advice at WARNING
    try:
        with tempfile.TemporaryDirectory(prefix="edgec-ortq-") as tmp:
            src, pre, out = (Path(tmp) / f for f in ("float.onnx", "pre.onnx", "qdq.onnx"))
            onnx.save(model, src)
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=per_channel, reduce_range=reduce_range, activation_type=act,
                            weight_type=QuantType.QInt8)
            return onnx.load(str(out))
    finally:
        logging.getLogger().setLevel(level)

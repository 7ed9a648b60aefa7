"""`--precision fp16 --calibration DATA`: layers whose values leave fp16's range stay fp32.

fp16 holds magnitudes up to 65504; a conv on raw 16-bit audio (an STFT written as a conv) or
the sums of a long reduction pass that, become inf, and everything after it NaN. The model is
run in onnxruntime on the calibration inputs (as `--quantize int8` does) and every node of the
imported graph that reads or writes a tensor whose magnitude reaches FP16_SAFE gets the
`keep_fp32` attribute, which the compute-fp16 pass honours (edgec/optimize/fp16_compute.py).
FP16_SAFE leaves 16x headroom below 65504 for partial sums inside the kernels, which can exceed
the finished outputs."""

from __future__ import annotations

import os

import numpy as np
import onnx

from edgec.ir.graph import Graph
from edgec.optimize.fp16_compute import KEEP_FP32
from edgec.quantize.calibrate import collect_ranges, float_tensors
from edgec.quantize.data import load_calibration

FP16_SAFE = 4096.0


def wide_tensors(model: onnx.ModelProto, calibration: str | os.PathLike) -> set[str]:
    """Names of the float tensors (graph inputs included) whose magnitude reaches FP16_SAFE."""
    names = [i.name for i in model.graph.input
             if i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT] + float_tensors(model)
    ranges = collect_ranges(model, names, load_calibration(calibration, model))
    return {n for n, (lo, hi) in ranges.items() if max(abs(lo), abs(hi)) >= FP16_SAFE or not np.isfinite([lo, hi]).all()}


def mark_wide_nodes(g: Graph, wide: set[str]) -> int:
    """Give `keep_fp32` to the nodes that read or write a wide tensor; returns how many."""
    count = 0
    for n in g.nodes:
        if any(v in wide for v in (*n.inputs, *n.outputs)):
            n.attrs[KEEP_FP32] = True
            count += 1
    return count

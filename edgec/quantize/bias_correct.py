"""Empirical bias correction (Nagel et al. 2019, "Data-Free Quantization", section 4.2, the
empirical variant; also in Qualcomm AIMET and TensorRT's "QDQ bias correction"): the rounding of
weights (and of the activations feeding a layer) shifts the *mean* of each output channel, and
in depthwise-heavy mobile nets these shifts add up through depth. For every Conv/Gemm with a
quantized bias, measure E[y_quant - y_float] per output channel on the calibration data and
subtract it from the bias. The measurement includes the mean error coming from earlier layers,
so layers are corrected one at a time in graph order (correcting all at once over-corrects:
the downstream share of an upstream shift is removed twice); one onnxruntime session per
corrected layer."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from edgec.quantize.calibrate import run_tensors


def _channel_means(model: onnx.ModelProto, names: list[str],
                   feeds: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Mean over samples and every axis but 1 (channels) of each tensor in `names`."""
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for vals in run_tensors(model, names, feeds):
        for n in names:
            v = vals[n].astype(np.float64)
            c = np.moveaxis(v, 1, 0).reshape(v.shape[1], -1) if v.ndim > 1 else v.reshape(1, -1)
            sums[n] = sums.get(n, 0.0) + c.sum(axis=1)
            counts[n] = counts.get(n, 0) + c.shape[1]
    return {n: sums[n] / counts[n] for n in names}


def _bias_sites(q: onnx.ModelProto) -> list[tuple[str, str, str]]:
    """(layer output, int32 bias initializer, bias scale initializer) of every Conv/Gemm whose
    bias input is a DequantizeLinear of a constant int32 tensor."""
    inits = {i.name: i for i in q.graph.initializer}
    prod = {o: n for n in q.graph.node for o in n.output}
    out = []
    for n in q.graph.node:
        if n.op_type not in ("Conv", "Gemm") or len(n.input) < 3 or n.input[2] not in prod:
            continue
        dq = prod[n.input[2]]
        if dq.op_type != "DequantizeLinear" or dq.input[0] not in inits or dq.input[1] not in inits:
            continue
        if inits[dq.input[0]].data_type != onnx.TensorProto.INT32:
            continue
        out.append((n.output[0], dq.input[0], dq.input[1]))
    return out


def correct_biases(float_model: onnx.ModelProto, q: onnx.ModelProto,
                   feeds: list[dict[str, np.ndarray]]) -> int:
    """Correct the int32 biases of `q` (in place), layer by layer in graph order, so that every
    Conv/Gemm output channel has the float model's mean on `feeds` given the already corrected
    layers before it; layer outputs are matched by tensor name. Returns the number of layers."""
    have = {o for n in float_model.graph.node for o in n.output}
    sites = [s for s in _bias_sites(q) if s[0] in have]
    if not sites:
        return 0
    want = _channel_means(float_model, [s[0] for s in sites], feeds)
    inits = {i.name: i for i in q.graph.initializer}
    for out, bname, sname in sites:
        err = _channel_means(q, [out], feeds)[out] - want[out]
        bq = numpy_helper.to_array(inits[bname]).astype(np.float64)
        scale = numpy_helper.to_array(inits[sname]).astype(np.float64)
        if err.shape != bq.shape:
            continue
        new = np.clip(np.rint(bq - err / scale), -(2**31), 2**31 - 1).astype(np.int32)
        inits[bname].CopyFrom(numpy_helper.from_array(new, bname))
    return len(sites)

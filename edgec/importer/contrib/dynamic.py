"""onnxruntime's dynamic-quantization ops (what `quantize_dynamic` writes) in standard ONNX.

- DynamicQuantizeMatMul(A, B, b_scale, b_zero_point?, bias?): A is quantized to uint8 per
  tensor at run time (DynamicQuantizeLinear: the range of A and 0), multiplied as integers
  (MatMulInteger), rescaled by a_scale * b_scale, bias added. Exactly onnxruntime's arithmetic.
- MatMulIntegerToFloat(A, B, a_scale, b_scale, a_zero_point?, b_zero_point?, bias?): the same
  with A already quantized.
- DynamicQuantizeLSTM: an LSTM whose W and R are int8/uint8 with per-direction (or per-column)
  scales, stored transposed ([directions, input, 4*hidden]). Here: the weights dequantized at
  build time into a standard LSTM (whose int8-valued weights the `exact-int8-weights` target
  pass stores as int8 again, edgec/optimize/weight_quant.py); the input sequence quantized at run time exactly as
  onnxruntime does (one range over the whole sequence), so the input GEMM is onnxruntime's.
  onnxruntime also quantizes the hidden state to uint8 (its own range, as DynamicQuantizeLinear)
  before every recurrent GEMM: the LSTM is marked (QUANTIZED_STATE_KEY) and edgec's LSTM kernel
  does the same round trip (edgec/kernels/rnn/lower.py: quantize_state), so the recurrent
  product sees onnxruntime's values.
"""

from __future__ import annotations

import numpy as np

from edgec.importer.contrib.rewrite import Rewrite, expands


def _rescaled_integer_matmul(rw: Rewrite, a_q: str, b: str, a_zp: str, b_zp: str, a_scale: str, b_scale: str,
                             bias: str, out: str) -> None:
    if rw.opset < 10:
        raise rw.fail(f"needs ONNX opset 10 or later (MatMulInteger), the model has {rw.opset}")
    ins = [a_q, b, a_zp, b_zp] if b_zp else ([a_q, b, a_zp] if a_zp else [a_q, b])
    acc = rw.op("Cast", [rw.op("MatMulInteger", ins)], to=1)
    scale = rw.op("Mul", [a_scale, b_scale])
    if bias:
        rw.op("Add", [rw.op("Mul", [acc, scale]), bias], [out])
    else:
        rw.op("Mul", [acc, scale], [out])


@expands("DynamicQuantizeMatMul", required=(0, 1, 2))
def dynamic_quantize_matmul(rw: Rewrite) -> None:
    q, s, zp = rw.name("aq"), rw.name("as"), rw.name("azp")
    rw.op("DynamicQuantizeLinear", [rw.input(0)], [q, s, zp])
    _rescaled_integer_matmul(rw, q, rw.input(1), zp, rw.input(3), s, rw.input(2), rw.input(4), rw.output(0))


@expands("MatMulIntegerToFloat", required=(0, 1, 2, 3))
def matmul_integer_to_float(rw: Rewrite) -> None:
    _rescaled_integer_matmul(rw, rw.input(0), rw.input(1), rw.input(4), rw.input(5), rw.input(2), rw.input(3),
                             rw.input(6), rw.output(0))


def _dequantized_weight(rw: Rewrite, w: str, scale: str, zp: str) -> str:
    """[D, K, 4H] integer weight -> float [D, 4H, K] (ONNX LSTM layout). The scale (and zero
    point) is [D] (per direction) or [D, 4H] (per column); both broadcast as [D, 1, 4H|1]."""
    wf = rw.op("Cast", [w], to=1)
    if zp:
        wf = rw.op("Sub", [wf, _as_3d(rw, rw.op("Cast", [zp], to=1))])
    wf = rw.op("Mul", [wf, _as_3d(rw, scale)])
    return rw.op("Transpose", [wf], perm=[0, 2, 1])


def _as_3d(rw: Rewrite, v: str) -> str:
    """[D] -> [D, 1, 1]; [D, 4H] -> [D, 1, 4H] (Reshape with 0 = copy the dim)."""
    shape = rw.op("Concat", [rw.op("Shape", [v]), rw.const([1, 1], np.int64)], axis=0)
    first = rw.op("Slice", [shape, rw.const([0], np.int64), rw.const([1], np.int64)])
    last = rw.op("Slice", [shape, rw.const([1], np.int64), rw.const([2], np.int64)])
    return rw.op("Reshape", [v, rw.op("Concat", [first, rw.const([1], np.int64), last], axis=0)])


@expands("DynamicQuantizeLSTM", required=(0, 1, 2, 8, 10))
def dynamic_quantize_lstm(rw: Rewrite) -> None:
    if rw.opset < 11:
        raise rw.fail(f"needs ONNX opset 11 or later (DynamicQuantizeLinear), the model has {rw.opset}")
    q, s, zp = rw.name("xq"), rw.name("xs"), rw.name("xzp")
    rw.op("DynamicQuantizeLinear", [rw.input(0)], [q, s, zp])
    x = rw.op("DequantizeLinear", [q, s, zp])
    w = _dequantized_weight(rw, rw.input(1), rw.input(8), rw.input(9))
    r = _dequantized_weight(rw, rw.input(2), rw.input(10), rw.input(11))
    ins = [x, w, r, rw.input(3), rw.input(4), rw.input(5), rw.input(6), rw.input(7)]
    while ins and not ins[-1]:
        ins.pop()
    keep = ("activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size", "input_forget")
    attrs = {k: ([a.decode() for a in v] if k == "activations" else v.decode() if isinstance(v, bytes) else v)
             for k, v in rw.attrs.items() if k in keep}
    rw.op("LSTM", ins, list(rw.node.output), **attrs)
    rw.quantized_state.extend(o for o in rw.node.output if o)

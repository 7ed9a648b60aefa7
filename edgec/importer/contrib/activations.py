"""onnxruntime's fused float ops (what its transformer optimizer and some exporters write) in
standard ONNX, computing what onnxruntime's CPU kernels compute:

- Gelu: 0.5 x (1 + erf(x / sqrt 2)); BiasGelu(a, b): Gelu(a + b); FastGelu(x, bias?): the tanh
  form 0.5 x (1 + tanh(0.7978845608 (x + 0.044715 x^3))); QuickGelu: x sigmoid(alpha x).
- FusedConv: Conv (+ Z) then its `activation` (Relu, Tanh, Sigmoid, LeakyRelu, Clip,
  HardSigmoid) with `activation_params`.
- FusedMatMul: MatMul of the operands transposed in their last two dims as asked, times alpha.
- LayerNormalization (the com.microsoft one, as ONNX 17's), SimplifiedLayerNormalization
  (RMSNorm: x / sqrt(mean(x^2) + eps) * scale), SkipLayerNormalization (LayerNorm of
  input + skip (+ bias) over the last axis; output 3 is the sum) and
  SkipSimplifiedLayerNormalization. Only the normalized output (and the skip sum) are produced.
"""

from __future__ import annotations

import numpy as np

from edgec.importer.contrib.rewrite import Rewrite, expands


def _gelu(rw: Rewrite, x: str, out: str) -> None:
    e = rw.op("Erf", [rw.op("Mul", [x, rw.const(1 / np.sqrt(2))])])
    half_x = rw.op("Mul", [x, rw.const(0.5)])
    rw.op("Mul", [half_x, rw.op("Add", [e, rw.const(1.0)])], [out])


@expands("Gelu")
def gelu(rw: Rewrite) -> None:
    _gelu(rw, rw.input(0), rw.output(0))


@expands("BiasGelu", required=(0, 1))
def bias_gelu(rw: Rewrite) -> None:
    _gelu(rw, rw.op("Add", [rw.input(0), rw.input(1)]), rw.output(0))


@expands("FastGelu")
def fast_gelu(rw: Rewrite) -> None:
    x = rw.op("Add", [rw.input(0), rw.input(1)]) if rw.input(1) else rw.input(0)
    cube = rw.op("Mul", [rw.op("Mul", [x, x]), x])
    inner = rw.op("Mul", [rw.op("Add", [x, rw.op("Mul", [cube, rw.const(0.044715)])]), rw.const(0.7978845608028654)])
    t = rw.op("Add", [rw.op("Tanh", [inner]), rw.const(1.0)])
    rw.op("Mul", [rw.op("Mul", [x, rw.const(0.5)]), t], [rw.output(0)])


@expands("QuickGelu")
def quick_gelu(rw: Rewrite) -> None:
    x = rw.input(0)
    s = rw.op("Sigmoid", [rw.op("Mul", [x, rw.const(float(rw.attrs.get("alpha", 1.702)))])])
    rw.op("Mul", [x, s], [rw.output(0)])


_CONV_ATTRS = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")


def _text(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


@expands("FusedConv", required=(0, 1))
def fused_conv(rw: Rewrite) -> None:
    attrs = {k: (_text(v) if k == "auto_pad" else v) for k, v in rw.attrs.items() if k in _CONV_ATTRS}
    y = rw.op("Conv", [i for i in rw.node.input[:3]], **attrs)
    if rw.input(3):
        y = rw.op("Add", [y, rw.input(3)])
    act = _text(rw.attrs.get("activation", ""))
    params = [float(p) for p in rw.attrs.get("activation_params", [])]
    out = rw.output(0)
    if not act:
        rw.op("Identity", [y], [out])
    elif act in ("Relu", "Tanh", "Sigmoid"):
        rw.op(act, [y], [out])
    elif act == "LeakyRelu":
        rw.op("LeakyRelu", [y], [out], alpha=params[0] if params else 0.01)
    elif act == "HardSigmoid":
        rw.op("HardSigmoid", [y], [out], alpha=params[0] if params else 0.2, beta=params[1] if len(params) > 1 else 0.5)
    elif act == "Clip":
        lo, hi = (params + [float("-inf"), float("inf")])[:2] if params else (float("-inf"), float("inf"))
        if rw.opset >= 11:
            rw.op("Clip", [y, rw.const(lo), rw.const(hi)], [out])
        else:
            rw.op("Clip", [y], [out], min=lo, max=hi)
    else:
        raise rw.fail(f"FusedConv activation {act!r} is not supported (Relu, Tanh, Sigmoid, LeakyRelu, "
                      "HardSigmoid, Clip)")


def _swap_last(rw: Rewrite, x: str, rank: int | None) -> str:
    if rank is None:
        raise rw.fail("transposing an operand needs its rank; give the model's inputs static shapes")
    return rw.op("Transpose", [x], perm=[*range(rank - 2), rank - 1, rank - 2])


@expands("FusedMatMul", required=(0, 1))
def fused_matmul(rw: Rewrite) -> None:
    if int(rw.attrs.get("transBatchA", 0)) or int(rw.attrs.get("transBatchB", 0)):
        raise rw.fail("transBatchA / transBatchB are not supported")
    a, b = rw.input(0), rw.input(1)
    if int(rw.attrs.get("transA", 0)):
        a = _swap_last(rw, a, rw.rank(a))
    if int(rw.attrs.get("transB", 0)):
        b = _swap_last(rw, b, rw.rank(b))
    alpha = float(rw.attrs.get("alpha", 1.0))
    if alpha == 1.0:
        rw.op("MatMul", [a, b], [rw.output(0)])
    else:
        rw.op("Mul", [rw.op("MatMul", [a, b]), rw.const(alpha)], [rw.output(0)])


def _mean_last(rw: Rewrite, x: str, axes: list[int]) -> str:
    if rw.opset >= 18:
        return rw.op("ReduceMean", [x, rw.const(axes, np.int64)], keepdims=1)
    return rw.op("ReduceMean", [x], axes=axes, keepdims=1)


def _normalize(rw: Rewrite, x: str, scale: str, bias: str, eps: float, axes: list[int], rms: bool,
               out: str) -> None:
    if not rms:
        x = rw.op("Sub", [x, _mean_last(rw, x, axes)])
    var = _mean_last(rw, rw.op("Mul", [x, x]), axes)
    y = rw.op("Div", [x, rw.op("Sqrt", [rw.op("Add", [var, rw.const(eps)])])])
    if bias:
        rw.op("Add", [rw.op("Mul", [y, scale]), bias], [out])
    else:
        rw.op("Mul", [y, scale], [out])


def _no_stats(rw: Rewrite, *ks: int) -> None:
    if any(rw.output(k) for k in ks):
        raise rw.fail("the mean / inverse standard deviation outputs are not supported")


@expands("LayerNormalization", "SimplifiedLayerNormalization", required=(0, 1))
def layer_norm(rw: Rewrite) -> None:
    _no_stats(rw, 1, 2)
    rms = rw.node.op_type == "SimplifiedLayerNormalization"
    axis, eps = int(rw.attrs.get("axis", -1)), float(rw.attrs.get("epsilon", 1e-5))
    if not rms and rw.opset >= 17:
        rw.op("LayerNormalization", [i for i in rw.node.input[:3] if i], [rw.output(0)], axis=axis, epsilon=eps)
        return
    rank = rw.rank(rw.input(0))
    if axis != -1 and rank is None:
        raise rw.fail("needs the input's rank; give the model's inputs static shapes")
    axes = [-1] if axis == -1 else list(range(axis % rank, rank))  # type: ignore[operator]
    _normalize(rw, rw.input(0), rw.input(1), "" if rms else rw.input(2), eps, axes, rms, rw.output(0))


@expands("SkipLayerNormalization", "SkipSimplifiedLayerNormalization", required=(0, 1, 2))
def skip_layer_norm(rw: Rewrite) -> None:
    _no_stats(rw, 1, 2)
    rms = rw.node.op_type == "SkipSimplifiedLayerNormalization"
    s = rw.op("Add", [rw.input(0), rw.input(1)])
    bias = rw.input(3) if rms else rw.input(4)
    beta = "" if rms else rw.input(3)
    if bias:
        s = rw.op("Add", [s, bias])
    if rw.output(3):
        rw.op("Identity", [s], [rw.output(3)])
    _normalize(rw, s, rw.input(2), beta, float(rw.attrs.get("epsilon", 1e-12)), [-1], rms, rw.output(0))

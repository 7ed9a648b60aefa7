"""Float unary rules as a table: op name -> IR emitter. Used by elementwise kernels and by the
fused epilogues of Conv/MatMul (`activation` attribute)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llvmlite import ir

from edgec.codegen import mathfn as m
from edgec.codegen import trig
from edgec.codegen.mathfn import FM, c

B = ir.IRBuilder
Rule = Callable[[B, ir.Value, dict[str, Any]], ir.Value]


def _relu(b: B, x: ir.Value, a: dict) -> ir.Value:
    return m.fmax_keep_nan(b, x, c(x, 0.0))  # Relu(NaN) is NaN


def _leaky(b: B, x: ir.Value, a: dict) -> ir.Value:
    return b.select(b.fcmp_ordered("<", x, c(x, 0.0)), m.fmul(b, x, c(x, a["alpha"])), x)


def _elu(b: B, x: ir.Value, a: dict) -> ir.Value:
    neg = m.fmul(b, c(x, a["alpha"]), m.fsub(b, m.exp(b, x), c(x, 1.0)))
    return b.select(b.fcmp_ordered("<", x, c(x, 0.0)), neg, x)


def _selu(b: B, x: ir.Value, a: dict) -> ir.Value:
    return m.fmul(b, c(x, a["gamma"]), _elu(b, x, {"alpha": a["alpha"]}))


def _celu(b: B, x: ir.Value, a: dict) -> ir.Value:
    al = a["alpha"]
    neg = m.fmul(b, c(x, al), m.fsub(b, m.exp(b, m.fdiv(b, x, c(x, al))), c(x, 1.0)))
    return b.select(b.fcmp_ordered("<", x, c(x, 0.0)), neg, x)


def _hardsigmoid(b: B, x: ir.Value, a: dict) -> ir.Value:
    return m.clamp(b, m.fadd(b, m.fmul(b, x, c(x, a["alpha"])), c(x, a["beta"])), 0.0, 1.0)


def _hardswish(b: B, x: ir.Value, a: dict) -> ir.Value:
    return m.fmul(b, x, _hardsigmoid(b, x, {"alpha": 1.0 / 6.0, "beta": 0.5}))


def _gelu(b: B, x: ir.Value, a: dict) -> ir.Value:
    if a.get("approximate", "none") == "tanh":
        inner = m.fmul(b, c(x, 0.7978845608028654),
                       m.fadd(b, x, m.fmul(b, c(x, 0.044715), m.fmul(b, x, m.fmul(b, x, x)))))
        return m.fmul(b, m.fmul(b, c(x, 0.5), x), m.fadd(b, c(x, 1.0), m.tanh(b, inner)))
    e = m.erf(b, m.fmul(b, x, c(x, 0.7071067811865476)))
    return m.fmul(b, m.fmul(b, c(x, 0.5), x), m.fadd(b, c(x, 1.0), e))


def _softplus(b: B, x: ir.Value, a: dict) -> ir.Value:
    y = m.log(b, m.fadd(b, c(x, 1.0), m.exp(b, x)))
    return b.select(b.fcmp_ordered(">", x, c(x, 20.0)), x, y)


def _sign(b: B, x: ir.Value, a: dict) -> ir.Value:
    pos = b.select(b.fcmp_ordered(">", x, c(x, 0.0)), c(x, 1.0), c(x, 0.0))
    return b.select(b.fcmp_ordered("<", x, c(x, 0.0)), c(x, -1.0), pos)


def _thresholded(b: B, x: ir.Value, a: dict) -> ir.Value:
    return b.select(b.fcmp_ordered(">", x, c(x, a["alpha"])), x, c(x, 0.0))


def _clip(b: B, x: ir.Value, a: dict) -> ir.Value:
    return m.fmin_keep_nan(b, m.fmax_keep_nan(b, x, c(x, a["min"])), c(x, a["max"]))


FLOAT_UNARY: dict[str, Rule] = {
    "Relu": _relu,
    "LeakyRelu": _leaky,
    "Elu": _elu,
    "Selu": _selu,
    "Celu": _celu,
    "ThresholdedRelu": _thresholded,
    "HardSigmoid": _hardsigmoid,
    "HardSwish": _hardswish,
    "Gelu": _gelu,
    "Clip": _clip,
    "Sigmoid": lambda b, x, a: m.sigmoid(b, x),
    "Tanh": lambda b, x, a: m.tanh(b, x),
    "Exp": lambda b, x, a: m.exp(b, x),
    "Log": lambda b, x, a: m.log(b, x),
    "Sqrt": lambda b, x, a: m.sqrt(b, x),
    "Erf": lambda b, x, a: m.erf(b, x),
    "Mish": lambda b, x, a: b.fmul(x, m.tanh(b, _softplus(b, x, a)), flags=FM),
    "Swish": lambda b, x, a: b.fmul(x, m.sigmoid(b, b.fmul(x, c(x, a["alpha"]), flags=FM)), flags=FM),
    "Sin": lambda b, x, a: trig.sin(b, x),
    "Cos": lambda b, x, a: trig.cos(b, x),
    "Neg": lambda b, x, a: b.fneg(x),
    "Abs": lambda b, x, a: m.fabs(b, x),
    "Reciprocal": lambda b, x, a: b.fdiv(c(x, 1.0), x, flags=FM),
    "Floor": lambda b, x, a: m.floor(b, x),
    "Ceil": lambda b, x, a: m.ceil(b, x),
    "Round": lambda b, x, a: m.round_even(b, x),
    "Softplus": _softplus,
    "Softsign": lambda b, x, a: m.fdiv(b, x, m.fadd(b, c(x, 1.0), m.fabs(b, x))),
    "Sign": _sign,
}


def apply_activation(b: B, x: ir.Value, activation: tuple[str, dict] | None) -> ir.Value:
    """Epilogue of fused kernels: `activation` is (op name, attrs) or None."""
    if activation is None:
        return x
    name, attrs = activation
    return FLOAT_UNARY[name](b, x, attrs)

"""Vector code for the gate math of the fused RNN kernels: the ONNX RNN activation functions on
`<lanes x float>` values (libm-free, tanh is Eigen's 13/6 rational as in mathfn, |err| < 1e-6;
sigmoid = 1 / (1 + exp(-x)) with mathfn's exp reduction) and one cell update per op.

`Gates` hands the cell its pre-activation sums (input projection + recurrent product) for one
vector of hidden units; the cell returns the new hidden (and cell) state vectors.
"""

from __future__ import annotations

from collections.abc import Callable

from llvmlite import ir

from edgec.codegen import mathfn as m
from edgec.codegen.mathfn import c
from edgec.codegen.types import I32

B = ir.IRBuilder


def vtanh(b: B, x: ir.Value) -> ir.Value:
    """mathfn.tanh for scalars and vectors alike."""
    xc = m.clamp(b, x, -7.90531110763549805, 7.90531110763549805)
    x2 = m.fmul(b, xc, xc)
    p = m.poly(b, x2, [-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
                       5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
                       4.89352455891786e-03])
    q = m.poly(b, x2, [1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
                       4.89352518554385e-03])
    y = m.fdiv(b, m.fmul(b, xc, p), q)
    return b.select(b.fcmp_ordered("<", m.fabs(b, x), c(x, 0.0004)), x, y)


def vexp(b: B, x: ir.Value) -> ir.Value:
    """mathfn.exp's Cephes reduction for scalars and vectors; inputs clamped to [-87.3, 88.3]
    (the sigmoid only needs the clamped range), <= 5 ulp."""
    ity = ir.VectorType(I32, x.type.count) if isinstance(x.type, ir.VectorType) else I32
    xc = m.clamp(b, x, -87.33654, 88.3)
    t = m.fadd(b, m.fmul(b, xc, c(x, 1.4426950408889634)), c(x, 0.5))
    n = b.sitofp(b.fptosi(t, ity), x.type)  # truncation; floor for negative t below
    n = b.select(b.fcmp_ordered(">", n, t), b.fsub(n, c(x, 1.0)), n)
    r = b.fsub(b.fsub(xc, b.fmul(n, c(x, 0.693359375))), b.fmul(n, c(x, -2.12194440e-4)))
    p = m.poly(b, r, [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                      1.6666665459e-1, 5.0000001201e-1])
    p = m.fadd(b, m.fadd(b, m.fmul(b, p, m.fmul(b, r, r)), r), c(x, 1.0))
    bits = b.shl(b.add(b.fptosi(n, ity), ir.Constant(ity, 127)), ir.Constant(ity, 23))
    return b.fmul(p, b.bitcast(bits, x.type))


def _sigmoid(b: B, x: ir.Value, al: float, be: float) -> ir.Value:
    """1 / (1 + e^-x): saturates to exactly 1.0 like the float result (1 - z stays exact)."""
    return m.fdiv(b, c(x, 1.0), m.fadd(b, c(x, 1.0), vexp(b, b.fneg(x))))


ACTS: dict[str, Callable[[B, ir.Value, float, float], ir.Value]] = {
    "sigmoid": _sigmoid,
    "tanh": lambda b, x, al, be: vtanh(b, x),
    "relu": lambda b, x, al, be: b.select(b.fcmp_ordered(">", x, c(x, 0.0)), x, c(x, 0.0)),
    "softsign": lambda b, x, al, be: m.fdiv(b, x, m.fadd(b, c(x, 1.0), m.fabs(b, x))),
    "hardsigmoid": lambda b, x, al, be: m.clamp(b, m.fadd(b, m.fmul(b, x, c(x, al)), c(x, be)), 0.0, 1.0),
    "leakyrelu": lambda b, x, al, be: b.select(b.fcmp_ordered("<", x, c(x, 0.0)), m.fmul(b, x, c(x, al)), x),
    "thresholdedrelu": lambda b, x, al, be: b.select(b.fcmp_ordered(">", x, c(x, al)), x, c(x, 0.0)),
    "affine": lambda b, x, al, be: m.fadd(b, m.fmul(b, x, c(x, al)), c(x, be)),
    "scaledtanh": lambda b, x, al, be: m.fmul(b, c(x, al), vtanh(b, m.fmul(b, x, c(x, be)))),
}


def activation(b: B, x: ir.Value, act: tuple[str, float, float] | list, clip: float | None) -> ir.Value:
    """act(clip(x)): ONNX clips every gate's pre-activation sum."""
    if clip is not None:
        x = m.clamp(b, x, -clip, clip)
    name, alpha, beta = act
    return ACTS[name](b, x, alpha, beta)


class Gates:
    """Pre-activation sums for one vector of units: gx (input projection incl. bias) and ga
    (recurrent product incl. its bias), gate k at offset k * Hp."""

    def __init__(self, b: B, load: Callable[[str, int], ir.Value]):
        self.b, self._load = b, load

    def gx(self, k: int) -> ir.Value:
        return self._load("gx", k)

    def ga(self, k: int) -> ir.Value:
        return self._load("ga", k)

    def sum(self, k: int) -> ir.Value:
        return m.fadd(self.b, self.gx(k), self.ga(k))


def gru_cell(b: B, g: Gates, h: ir.Value, acts: list, clip: float | None, lbr: bool) -> ir.Value:
    f, gg = acts
    z = activation(b, g.sum(0), f, clip)
    if lbr:  # h~ = g(Wx + Wb + r * (R h + Rb)): the recurrent product is kept apart
        r = activation(b, g.sum(1), f, clip)
        ht = activation(b, m.fadd(b, g.gx(2), m.fmul(b, r, g.ga(2))), gg, clip)
    else:  # R_h (r * h) was computed by the caller into ga(2)
        ht = activation(b, g.sum(2), gg, clip)
    return m.fadd(b, ht, m.fmul(b, z, m.fsub(b, h, ht)))


def gru_reset(b: B, g: Gates, h: ir.Value, acts: list, clip: float | None) -> ir.Value:
    """r * h_prev (linear_before_reset = 0): the input of the second recurrent product."""
    return m.fmul(b, activation(b, g.sum(1), acts[0], clip), h)


def lstm_cell(b: B, g: Gates, cprev: ir.Value, peep: Callable[[int], ir.Value] | None, acts: list,
              clip: float | None, input_forget: bool) -> tuple[ir.Value, ir.Value]:
    """Gate order i, o, f, c; peepholes (i, o, f) read the previous cell for i and f, the new one for o."""
    f, gg, hh = acts
    pi = g.sum(0)
    if peep:
        pi = m.fadd(b, pi, m.fmul(b, peep(0), cprev))
    i = activation(b, pi, f, clip)
    if input_forget:
        fg = m.fsub(b, c(i, 1.0), i)
    else:
        pf = g.sum(2)
        if peep:
            pf = m.fadd(b, pf, m.fmul(b, peep(2), cprev))
        fg = activation(b, pf, f, clip)
    cc = activation(b, g.sum(3), gg, clip)
    cnew = m.fadd(b, m.fmul(b, fg, cprev), m.fmul(b, i, cc))
    po = g.sum(1)
    if peep:
        po = m.fadd(b, po, m.fmul(b, peep(1), cnew))
    o = activation(b, po, f, clip)
    return m.fmul(b, o, ACTS[hh[0]](b, cnew, hh[1], hh[2])), cnew


def rnn_cell(b: B, g: Gates, acts: list, clip: float | None) -> ir.Value:
    return activation(b, g.sum(0), acts[0], clip)

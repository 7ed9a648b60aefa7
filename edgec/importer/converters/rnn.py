"""ONNX GRU, LSTM and RNN -> one fused IR node each (op "GRU" / "LSTM" / "RNN").

IR node: inputs [X, W, R, B, initial_h, initial_c, P, sequence_lens] as in ONNX ("" when
absent; a constant all-zero P is dropped), outputs [Y, Y_h, (Y_c for LSTM), scratch]. The target
pass pack-rnn (edgec/kernels/rnn/pack.py) then puts the weights into the kernel's packed layout
(edgec/kernels/rnn/layout.py). Missing optional outputs become temporaries; `scratch` holds the
hoisted input projection and the recurrent state (the memory planner places it like any other
value).
"""

from __future__ import annotations

import numpy as np
import onnx

from edgec.errors import ModelError
from edgec.importer.context import ConvertContext
from edgec.importer.registry import converter
from edgec.importer.validate import show, where
from edgec.kernels.rnn import layout as lay

GATES = {"GRU": 3, "LSTM": 4, "RNN": 1}
DEFAULT_ACTS = {"GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"], "RNN": ["Tanh"]}
# name -> (default alpha, default beta) or None when the function takes no parameter.
# Defaults are onnxruntime's (rnn_helpers.cc).
ACTIVATIONS: dict[str, tuple[float | None, float | None]] = {
    "sigmoid": (None, None), "tanh": (None, None), "relu": (None, None), "softsign": (None, None),
    "hardsigmoid": (0.2, 0.5), "leakyrelu": (0.01, None), "thresholdedrelu": (1.0, None),
    "affine": (1.0, 0.0), "scaledtanh": (1.0, 1.0),
}


def _activations(op: str, node: onnx.NodeProto, at: dict, dirs: int) -> list[list[tuple[str, float, float]]]:
    names = [a if isinstance(a, str) else a.decode() for a in at.get("activations", [])]
    per = len(DEFAULT_ACTS[op])
    if not names:
        names = DEFAULT_ACTS[op] * dirs
    if len(names) != per * dirs:
        raise ModelError(f"{where(node)}: expected {per * dirs} activations, got {len(names)}")
    alphas, betas = list(at.get("activation_alpha", [])), list(at.get("activation_beta", []))
    out: list[tuple[str, float, float]] = []
    for name in names:
        key = name.lower()
        if key not in ACTIVATIONS:
            raise ModelError(f"{where(node)}: activation {show(name)} is not supported "
                             f"(supported: {', '.join(sorted(ACTIVATIONS))})")
        da, db = ACTIVATIONS[key]
        alpha = (float(alphas.pop(0)) if alphas else da) if da is not None else 0.0
        beta = (float(betas.pop(0)) if betas else db) if db is not None else 0.0
        out.append((key, alpha, beta))
    return [out[k * per:(k + 1) * per] for k in range(dirs)]


@converter("GRU", "LSTM", "RNN")
def convert_rnn(cx: ConvertContext, node: onnx.NodeProto) -> None:
    op = node.op_type
    at = cx.attrs(node)
    name = node.name or node.output[0] or op.lower()
    x, w, r = node.input[0], node.input[1], node.input[2]
    b, seq, h0 = cx.input(node, 3), cx.input(node, 4), cx.input(node, 5)
    c0 = cx.input(node, 6) if op == "LSTM" else ""
    pp = cx.input(node, 7) if op == "LSTM" else ""
    for v in (x, w, r, b, h0, c0, pp):
        if v and np.dtype(cx.value(v).dtype) != np.float32:
            raise ModelError(f"{where(node)}: only float32 is supported, {show(v)} is "
                             f"{np.dtype(cx.value(v).dtype).name}")
    layout = int(at.get("layout", 0))
    direction = at.get("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ModelError(f"{where(node)}: unknown direction {show(direction)}")
    dirs = 2 if direction == "bidirectional" else 1
    xs = cx.shape(x)
    if len(xs) != 3 or layout not in (0, 1):
        raise ModelError(f"{where(node)}: X must be 3-D and layout 0 or 1")
    t_, b_, i_ = (xs[1], xs[0], xs[2]) if layout else xs
    g_ = GATES[op]
    h_ = int(at.get("hidden_size", cx.shape(r)[-1]))
    if cx.shape(w) != (dirs, g_ * h_, i_) or cx.shape(r) != (dirs, g_ * h_, h_):
        raise ModelError(f"{where(node)}: W {cx.shape(w)} / R {cx.shape(r)} do not match "
                         f"{dirs} direction(s), hidden_size {h_}, input size {i_}")
    if op == "LSTM" and int(at.get("input_forget", 0)) not in (0, 1):
        raise ModelError(f"{where(node)}: input_forget must be 0 or 1")
    lbr = int(at.get("linear_before_reset", 0)) if op == "GRU" else 0
    clip = at.get("clip")
    # onnxruntime refuses a clip that is not positive; a negative one would clamp every gate
    # to an empty range, so it is a malformed model, not a choice.
    if clip is not None and not (np.isfinite(float(clip)) and float(clip) > 0):
        raise ModelError(f"{where(node)}: clip must be a positive finite number, not {show(clip)}")

    # sequence_lens: dropped when constant and all equal to seq_length, else read at run time.
    if seq:
        if np.dtype(cx.value(seq).dtype) != np.int32 or cx.shape(seq) != (b_,):
            raise ModelError(f"{where(node)}: sequence_lens must be int32 of shape [{b_}]")
        data = cx.const(seq)
        if data is not None:
            if (data < 0).any() or (data > t_).any():
                raise ModelError(f"{where(node)}: sequence_lens {data.tolist()} outside [0, {t_}]")
            if (data == t_).all():
                seq = ""

    hp = lay.padded_hidden(h_)
    if b and cx.shape(b) != (dirs, 2 * g_ * h_):
        raise ModelError(f"{where(node)}: B has shape {cx.shape(b)}, expected {(dirs, 2 * g_ * h_)}")
    if pp:
        if cx.shape(pp) != (dirs, 3 * h_):
            raise ModelError(f"{where(node)}: P has shape {cx.shape(pp)}, expected "
                             f"{(dirs, 3 * h_)}")
        pc = cx.const(pp)
        pp = "" if pc is not None and not pc.any() else pp
    state_shape = (b_, dirs, h_) if layout else (dirs, b_, h_)
    for v, what in ((h0, "initial_h"), (c0, "initial_c")):
        if v and cx.shape(v) != state_shape:
            raise ModelError(f"{where(node)}: {what} has shape {cx.shape(v)}, expected "
                             f"{state_shape}")

    y_shape = (b_, t_, dirs, h_) if layout else (t_, dirs, b_, h_)
    nout = 3 if op == "LSTM" else 2
    shapes = [y_shape] + [state_shape] * (nout - 1)
    outs = [node.output[k] if k < len(node.output) else "" for k in range(nout)]
    outs = [o or cx.temp(f"{name}_out{k}", np.float32, shapes[k]) for k, o in enumerate(outs)]
    extra = {}
    if op == "LSTM" and any(o in cx.quantized_state for o in node.output if o):
        extra["quantized_state"] = True
    n_ = g_ * hp
    scratch = cx.temp(f"{name}_scratch", np.float32, (t_ * b_ * n_ + n_ + 2 * b_ * hp + hp,))
    cx.emit(op, [x, w, r, b, h0, c0, pp, seq], [*outs, scratch], node.name,
            seq_length=t_, batch=b_, input_size=i_, hidden=h_, hidden_padded=hp, gates=g_,
            directions=dirs, reverse=direction == "reverse", layout=layout,
            linear_before_reset=lbr, clip=None if clip is None else float(clip),
            input_forget=int(at.get("input_forget", 0)), panel=lay.panel_width(hp),
            activations=_activations(op, node, at, dirs), **extra)

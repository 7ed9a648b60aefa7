"""`--weights int8|fp16`: weight-only compression of the batch-1 layers (target pass
`quantize-weights`, run after `sparsify-rnn` and `prepare-gemv` have packed the weights).

int8: every packed weight of a `Gemv` and of a fused GRU / LSTM / RNN node (input projection
Wt, recurrent Rt, or the values of its block-sparse form Rval) becomes int8, symmetric per
output unit: s_n = max_k |W[k, n]| / 127, q = round_half_even(W / s_n) in [-127, 127]. The
scales are an extra fp32 input (one per packed column, padding columns get 1.0 and q = 0).
Activations stay fp32: the kernels widen q to float on the fly and multiply the finished dot
product by s_n once (sum_k x_k q_kn s_n = s_n sum_k x_k q_kn), before bias and activation.
fp16: the same weights stored as float16, widened on load (F16C `vcvtph2ps` on x86, `fcvtl`
on ARM); no scales.

The node attribute `weights` ("int8" / "fp16", visible in --dump-ir) tells the kernel; inputs:
Gemv [x, Wq, bias, scale]; RNN [X, Wt, Rt, bx, br, h0, c0, P, sl, Rptr, Ridx, Rval, Wscale,
Rscale] ("" where absent)."""

from __future__ import annotations

import numpy as np

from edgec.errors import EdgecError
from edgec.ir.graph import Graph, Node
from edgec.targets import TargetProfile

RNN_OPS = ("GRU", "LSTM", "RNN")
W_SCALE, R_SCALE = 12, 13  # RNN inputs of the per-column scales (int8)


def check_fp16_target(profile: TargetProfile) -> None:
    """fp16 weights need a hardware half -> float conversion (no libcalls in generated code)."""
    if profile.f16c:
        return
    raise EdgecError(f"--weights fp16 needs F16C on x86-64 (device {profile.name!r}, cpu "
                     f"{profile.cpu!r} has none); use --weights int8 or fp32")


def quantize_columns(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 along `axis` (the reduction): (q int8 like w, scale fp32 with `axis` removed).
    All-zero columns get scale 1.0."""
    w = np.asarray(w, np.float32)
    amax = np.abs(w).max(axis=axis)
    scale = np.where(amax > 0, amax / np.float32(127.0), np.float32(1.0)).astype(np.float32)
    q = np.clip(np.rint(w / np.expand_dims(scale, axis)), -127, 127).astype(np.int8)
    return q, scale


def dequantize(q: np.ndarray, scale: np.ndarray, axis: int) -> np.ndarray:
    return q.astype(np.float32) * np.expand_dims(scale, axis)


def _packed_scale(scale: np.ndarray, d: int) -> np.ndarray:
    """[D][N/P][P] panel scales -> [D][N] (packed column order)."""
    return np.ascontiguousarray(scale.reshape(d, -1))


def bsr_scales(ptr: np.ndarray, vals: np.ndarray, d: int, n: int) -> np.ndarray:
    """Per packed column scale [D][N] of block-sparse rows (edgec/kernels/rnn/layout.py: bsr_rows)."""
    nblk = n // 8
    scale = np.ones((d, n), np.float32)
    for di in range(d):
        for c in range(nblk):
            lo, hi = ptr[di * (nblk + 1) + c], ptr[di * (nblk + 1) + c + 1]
            if hi > lo:
                amax = np.abs(vals[lo:hi]).max(axis=0)
                scale[di, c * 8:(c + 1) * 8] = np.where(amax > 0, amax / np.float32(127.0), 1.0)
    return scale


def _gemv(g: Graph, n: Node, fmt: str) -> None:
    w = g.values[n.inputs[1]].data  # [N/NB][K][NB]
    if fmt == "fp16":
        n.inputs[1] = g.add_const(f"{n.inputs[1]}_f16", w.astype(np.float16))
    else:
        q, s = quantize_columns(w, axis=1)
        n.inputs[1] = g.add_const(f"{n.inputs[1]}_q8", q)
        n.inputs[3:] = [g.add_const(f"{n.inputs[1]}_scale", s.reshape(-1))]
    n.attrs["weights"] = fmt


def exact_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Packed RNN weights [D][N/P][K][P] that are int8 values times one scale per column or per
    direction (a dequantized int8 model: onnxruntime's DynamicQuantizeLSTM) as (q, scale
    [D][N/P][P]) that reproduce every weight to float rounding, else None."""
    w = np.asarray(w, np.float32)
    mag = np.abs(w)
    col = mag.max(axis=2)
    per_dir = np.broadcast_to(mag.reshape(w.shape[0], -1).max(axis=1)[:, None, None], col.shape)
    for amax in (col, per_dir):
        scale = np.where(amax > 0, amax / np.float32(127.0), np.float32(1.0)).astype(np.float32)
        q = np.rint(w / scale[:, :, None, :])
        if np.abs(q).max(initial=0) <= 127 and \
                (np.abs(q * scale[:, :, None, :] - w) <= np.float32(1e-6) * mag).all():
            return q.astype(np.int8), np.ascontiguousarray(scale)
    return None


def _rnn(g: Graph, n: Node, fmt: str, exact: dict[int, tuple[np.ndarray, np.ndarray]] | None = None) -> None:
    """`exact`: input position -> (q, scale) found by exact_columns (stored as they are)."""
    a = n.attrs
    d, cols = a["directions"], a["gates"] * a["hidden_padded"]
    ins = n.inputs + [""] * (W_SCALE + 2 - len(n.inputs))
    scales = ["", ""]
    for pos, which in ((1, 0), (2, 1)):
        if not ins[pos] or not g.values[ins[pos]].is_const:
            continue
        w = g.values[ins[pos]].data  # [D][N/P][K][P]
        if fmt == "fp16":
            ins[pos] = g.add_const(f"{ins[pos]}_f16", w.astype(np.float16))
        else:
            q, s = exact[pos] if exact else quantize_columns(w, axis=2)
            ins[pos] = g.add_const(f"{ins[pos]}_q8", q)
            scales[which] = g.add_const(f"{ins[pos]}_scale", _packed_scale(s, d))
    if ins[11]:  # block-sparse recurrent values [E][8]
        vals = g.values[ins[11]].data
        if fmt == "fp16":
            ins[11] = g.add_const(f"{ins[11]}_f16", vals.astype(np.float16))
        else:
            ptr = g.values[ins[9]].data
            s = bsr_scales(ptr, vals, d, cols)
            entry_cols = _entry_columns(ptr, d, cols)
            q = np.clip(np.rint(vals / s.reshape(-1)[entry_cols]), -127, 127).astype(np.int8)
            ins[11] = g.add_const(f"{ins[11]}_q8", q)
            scales[1] = g.add_const(f"{ins[11]}_scale", s)
    ins[W_SCALE:W_SCALE + 2] = scales
    while ins and not ins[-1]:
        ins.pop()
    n.inputs = ins
    a["weights"] = fmt


def _entry_columns(ptr: np.ndarray, d: int, n: int) -> np.ndarray:
    """For each BSR entry: the flat [D*N] index of its first column, as [E][8] indices."""
    nblk = n // 8
    total = int(ptr[-1])
    first = np.zeros(max(total, 1), np.int64)
    for di in range(d):
        for c in range(nblk):
            lo, hi = ptr[di * (nblk + 1) + c], ptr[di * (nblk + 1) + c + 1]
            first[lo:hi] = di * n + c * 8
    return first[:, None] + np.arange(8)[None, :]


def _rnn_eligible(g: Graph, n: Node) -> bool:
    return (n.op in RNN_OPS and len(n.inputs) >= 3 and bool(n.inputs[1])
            and g.values[n.inputs[1]].is_const
            and ((bool(n.inputs[2]) and g.values[n.inputs[2]].is_const) or len(n.inputs) > 11))


def exact_int8_weights(g: Graph) -> Graph:
    """Target pass `exact-int8-weights` (fp32 builds): an LSTM/GRU/RNN whose constant weights
    are all exactly int8 times per-column or per-direction scales keeps them as int8 (the
    `--weights int8` kernels, with those scales): a quarter of the bytes streamed per step and
    no loss. Trained float weights never qualify."""
    for n in g.nodes:
        if not _rnn_eligible(g, n) or n.attrs.get("weights") or n.attrs.get("sparse") \
                or len(n.inputs) > 11 and n.inputs[11]:
            continue
        found = {}
        for pos in (1, 2):
            name = n.inputs[pos] if len(n.inputs) > pos else ""
            if name and g.values[name].is_const:
                found[pos] = exact_columns(g.values[name].data)
        if found and all(v is not None for v in found.values()):
            _rnn(g, n, "int8", found)
    return g


def quantize_weights(profile: TargetProfile, fmt: str, rnn: bool = True):  # noqa: ANN201 - returns a Pass
    """`rnn` False: Gemv layers only (`--precision fp16`: the dense layers it keeps fp32, for
    their long sums, still stream fp16 weights)."""
    def run(g: Graph) -> Graph:
        if fmt == "fp32":
            return g
        if fmt == "fp16":
            check_fp16_target(profile)
        for n in g.nodes:
            if n.op == "Gemv" and g.values[n.inputs[1]].is_const and not n.attrs.get("exact"):
                _gemv(g, n, fmt)
            elif rnn and _rnn_eligible(g, n):
                _rnn(g, n, fmt)
        return g

    return run


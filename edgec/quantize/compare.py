"""Accuracy report: the float model and a quantized one (a QDQ .onnx run in onnxruntime, or an
edgec bundle) on the same inputs; per tensor cosine similarity, SQNR (dB) and max abs error.
For a QDQ model, tensor T of the float model is compared with what the quantized model's
consumers of T read (T's DequantizeLinear output when T is quantized)."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx

from edgec.errors import EdgecError
from edgec.quantize.calibrate import float_tensors, run_tensors


@dataclass
class TensorError:
    tensor: str
    op: str
    is_output: bool
    elements: int
    cosine: float
    sqnr_db: float
    max_abs_error: float
    worst: bool = False


@dataclass
class Accumulator:
    dot: float = 0.0
    ref2: float = 0.0
    got2: float = 0.0
    err2: float = 0.0
    max_err: float = 0.0
    n: int = 0

    def add(self, ref: np.ndarray, got: np.ndarray) -> None:
        r, q = ref.astype(np.float64).ravel(), got.astype(np.float64).ravel()
        if r.shape != q.shape:
            raise EdgecError(f"shape mismatch between the models: {ref.shape} vs {got.shape}")
        self.dot += float(r @ q)
        self.ref2 += float(r @ r)
        self.got2 += float(q @ q)
        d = r - q
        self.err2 += float(d @ d)
        self.max_err = max(self.max_err, float(np.abs(d).max()) if d.size else 0.0)
        self.n += r.size

    def result(self, tensor: str, op: str, is_output: bool) -> TensorError:
        den = math.sqrt(self.ref2 * self.got2)
        cos = self.dot / den if den > 0 else (1.0 if self.ref2 == self.got2 else 0.0)
        sqnr = 10 * math.log10(self.ref2 / self.err2) if self.err2 > 0 and self.ref2 > 0 else (
            math.inf if self.err2 == 0 else -math.inf)
        return TensorError(tensor, op, is_output, self.n, cos, sqnr, self.max_err)


@dataclass
class Report:
    target: str
    samples: int
    tensors: list[TensorError]

    def to_json(self) -> dict:
        def clean(x: object) -> object:
            return None if isinstance(x, float) and not math.isfinite(x) else x

        return {"target": self.target, "samples": self.samples,
                "tensors": [{k: clean(v) for k, v in asdict(t).items()} for t in self.tensors],
                "worst": [t.tensor for t in self.tensors if t.worst]}


def _producers(model: onnx.ModelProto) -> dict[str, str]:
    return {o: n.op_type for n in model.graph.node for o in n.output}


def compare(model: onnx.ModelProto, target: str | os.PathLike, feeds: list[dict[str, np.ndarray]],
            worst: int = 5) -> Report:
    """Compare `model` (float) with `target`: a QDQ/float .onnx file or a bundle directory."""
    if not feeds:
        raise EdgecError("calibration data is empty (no samples)")
    p = Path(target)
    outputs = [o.name for o in model.graph.output]
    ops = _producers(model)
    if p.is_dir():
        return _compare_bundle(model, p, feeds, outputs, ops)
    if not p.is_file():
        raise EdgecError(f"not found: {p} (expected a quantized .onnx model or a bundle directory)")
    from edgec.importer import load_onnx

    qmodel = load_onnx(p)
    qnames = {o for n in qmodel.graph.node for o in n.output}
    pairs = []  # (float tensor, quantized-model tensor)
    for t in float_tensors(model):
        if ops.get(t) == "Constant":  # weights stored as Constant nodes (paddle2onnx)
            continue
        dq = f"{t}_DequantizeLinear_Output"
        if dq in qnames:
            pairs.append((t, dq))
        elif t in qnames:
            pairs.append((t, t))
    missing = [o for o in outputs if o not in {a for a, _ in pairs}]
    if missing:
        raise EdgecError(f"{p} does not produce the float model's output(s) {missing}")
    accs = {t: Accumulator() for t, _ in pairs}
    ref_it = run_tensors(model, [t for t, _ in pairs], feeds)
    got_it = run_tensors(qmodel, [q for _, q in pairs], feeds)
    for ref, got in zip(ref_it, got_it):
        for t, q in pairs:
            accs[t].add(ref[t], got[q])
    return _finish(str(p), len(feeds), [accs[t].result(t, ops.get(t, "?"), t in outputs)
                                         for t, _ in pairs], worst)


def _compare_bundle(model: onnx.ModelProto, bundle: Path, feeds: list[dict[str, np.ndarray]],
                    outputs: list[str], ops: dict[str, str]) -> Report:
    from edgec.runner import load

    runner = load(bundle)
    accs = {o: Accumulator() for o in outputs}
    for ref, feed in zip(run_tensors(model, [], feeds), feeds):
        got = runner.run(feed)
        for o in outputs:
            if o not in got:
                raise EdgecError(f"bundle {bundle} has no output {o!r} (outputs: {sorted(got)})")
            accs[o].add(ref[o], got[o])
    return _finish(str(bundle), len(feeds), [accs[o].result(o, ops.get(o, "?"), True) for o in outputs], 0)


def _finish(target: str, samples: int, rows: list[TensorError], worst: int) -> Report:
    for t in sorted(rows, key=lambda r: (r.sqnr_db, r.tensor))[:worst]:
        if t.sqnr_db < math.inf:
            t.worst = True
    return Report(target, samples, rows)

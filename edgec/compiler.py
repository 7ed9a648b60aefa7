"""`edgec.build`: ONNX model -> bundle directory. Mirrors `edgec build` flag for flag.
Checks the arguments, makes the `BuildOptions`, runs the driver (edgec/driver.py) for every
target slice and hands the `CompiledModel`s to the packager of the platform."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import onnx

from edgec.codegen.objcache import ObjectCache
from edgec.driver import BuildReport, compile_for_target, front_end, load_tuning
from edgec.errors import EdgecError
from edgec.importer import load_onnx
from edgec.importer.tflite import SOURCE_FORMAT_KEY
from edgec.options import BuildOptions, check_compute
from edgec.packager import Bundle, mobile, write_bundle
from edgec.packager.bundle import check_out_dir, check_prefix
from edgec.targets import TargetProfile, get_profile
from edgec.toolchain import find_toolchain
from edgec.version import __version__


def build(model: onnx.ModelProto | str | os.PathLike, device: str = "host",
          out_dir: str | os.PathLike | None = None, *, name: str = "model",
          input_shapes: dict[str, list[int]] | None = None, threads: int = 1,
          dump_ir: bool | Callable[[str], None] = False,
          progress: Callable[[str], None] | None = None,
          tuning_log: str | os.PathLike | None = None, schedule_overrides: dict | None = None,
          fast_math: str | bool = True, sparsity: str = "auto", sparse_threshold: float = 0.0,
          sparse_code_limit: int = 64 * 1024, quantize: str | None = None,
          calibration: str | os.PathLike | None = None, weights: str = "fp32",
          bind: dict[str, object] | None = None, cache: bool = True, jobs: int | None = None,
          profile: bool = False, precision: str = "fp32") -> Bundle:
    """Compile `model` for `device` and write a bundle to `out_dir` (default: ./<name>-<device>).
    `tuning_log` (from `edgec tune`) applies the best measured schedule per task;
    `schedule_overrides` (task key -> knobs) does the same from memory (the tuner's measure).
    `weights` ("fp32", "int8", "fp16"): weight-only compression of the batch-1 dense and RNN
    layers (edgec/optimize/weight_quant.py). `bind` (input name -> values) freezes graph inputs
    that decide shapes (Reshape's shape, Slice's starts, Reduce axes, ...) to constants: the
    bundle is specialised to those values and no longer has those inputs.
    `cache`: reuse and store compiled kernels in the object cache (edgec/codegen/objcache.py);
    `jobs`: LLVM processes (default: EDGEC_JOBS or the CPUs). Neither changes the bundle.
    `profile`: a timer around every kernel call, read back with `<name>_profile` or
    `edgec bench --profile` (docs/profiling.md); without it the bundle has no trace of profiling.
    `precision` ("fp32", "fp16"): the arithmetic of the float kernels; fp16 needs a device with
    ARMv8.2 half-precision arithmetic (rpi5, android-arm64-dotprod; docs/fp16.md). In a phone
    bundle the slices without it compute in fp32. With `calibration`, layers whose values
    reach 4096 on those inputs stay fp32 (edgec/quantize/fp16_range.py)."""
    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    _check_arguments(model, device, out_dir, threads, tuning_log, calibration, schedule_overrides)
    if not isinstance(cache, bool) or not (jobs is None or (isinstance(jobs, int) and not isinstance(jobs, bool)
                                                           and 1 <= jobs <= 64)):
        raise EdgecError("cache must be True/False and jobs an integer from 1 to 64 (or None)")
    if not (isinstance(dump_ir, bool) or callable(dump_ir)) or not (progress is None or callable(progress)):
        raise EdgecError("dump_ir must be True/False or a callable taking a string; progress a callable")
    check_prefix(name)
    phone_profiles = mobile.resolve_devices(device)  # Android/iOS: one bundle, one slice per device
    profiles = phone_profiles or [get_profile(device)]
    find_toolchain(profiles[0])  # fail before any work if the C toolchain is missing
    options = BuildOptions.from_flags(fast_math, sparsity, sparse_threshold, sparse_code_limit, weights,
                                      quantize, threads, profile, precision)
    out_dir = Path(out_dir or Path.cwd() / f"{name}-{profiles[0].platform if phone_profiles else profiles[0].name}")
    check_out_dir(out_dir.resolve())  # refuse a foreign directory before any work
    if options.profile and phone_profiles:
        raise EdgecError("--profile is not supported for Android/iOS bundles yet; profile on a Linux "
                         "device of the same CPU (e.g. --device rpi4 or x86_64)")
    if options.precision == "fp16" and phone_profiles:
        raise EdgecError("--quantize fp16 is not supported for Android/iOS bundles yet")
    check_compute(options, profiles)
    overrides, log_info = load_tuning(tuning_log, schedule_overrides)
    proto = load_onnx(model)  # a .tflite file arrives converted (edgec/importer/tflite/)
    source_format = "tflite" if any(p.key == SOURCE_FORMAT_KEY and p.value == "tflite"
                                    for p in proto.metadata_props) else "onnx"
    if options.precision == "int8":  # edgec's own calibration -> QDQ model (edgec/quantize/), then as usual
        from edgec.quantize import QuantOptions, load_calibration, quantize_model
        from edgec.quantize.qdq_writer import default_weight_bits

        if calibration is None:
            raise EdgecError("--quantize int8 needs --calibration DIR_OR_NPZ")
        say("quantizing")
        proto = quantize_model(proto, load_calibration(calibration, proto),
                               QuantOptions(weight_bits=default_weight_bits(profiles[0])))
    dump = (print if dump_ir is True else dump_ir) or None
    front = front_end(proto, input_shapes, say, dump, bind)
    g = front.graph
    if options.compute == "fp16" and calibration is not None:  # layers beyond fp16's range stay fp32
        from edgec.quantize.fp16_range import mark_wide_nodes, wide_tensors

        say("measuring ranges for fp16")
        mark_wide_nodes(g, wide_tensors(proto, calibration))
    t_opt = time.perf_counter()
    say("generating code")
    objects = ObjectCache.open(cache)
    compiled = [compile_for_target(g, p, _for_slice(options, p), name, overrides, dump, objects, jobs)
                for p in profiles]
    objects.trim()
    t_cg = time.perf_counter()
    say("packaging")
    opts = {"input_shapes": {k: list(map(int, v)) for k, v in sorted((input_shapes or {}).items())},
            **options.manifest(), **({"bind": _bound(bind)} if bind else {})}
    extra = {"model_sha256": front.model_sha256, "source_format": source_format, "build_options": opts,
             "ops": g.op_counts(), "tuning_log": log_info}
    first = compiled[0]
    if phone_profiles:
        bundle = mobile.build_bundle(compiled, name=name, out_dir=out_dir, version=__version__,
                                     manifest_extra=extra)
    else:
        bundle = write_bundle(out_dir, first, prefix=name, version=__version__,
                              manifest_extra={**extra, "code_text_bytes": first.text_bytes})
    t_end = time.perf_counter()
    report = BuildReport(g.op_counts(), len(g.nodes), len(first.plan.weights), first.text_bytes,
                         first.plan.arena_bytes, first.plan.sum_of_sizes)
    report.seconds = {**front.seconds, "codegen": t_cg - t_opt, "package": t_end - t_cg, "total": t_end - t0}
    report.targets = {c.profile.name: c.stats for c in compiled}
    bundle.report = report  # type: ignore[attr-defined]
    return bundle


def _for_slice(options: BuildOptions, profile: TargetProfile) -> BuildOptions:
    """The options of one slice: a phone bundle's slices without fp16 arithmetic compute in fp32."""
    return replace(options, compute="fp32") if options.compute == "fp16" and not profile.fp16_arith else options


def _bound(bind: dict[str, object]) -> dict[str, list]:
    """The bound values as the manifest records them (JSON numbers)."""
    import numpy as np

    return {k: np.asarray(v).reshape(-1).tolist() for k, v in sorted(bind.items())}


def _check_arguments(model: object, device: object, out_dir: object, threads: object,
                     tuning_log: object, calibration: object, schedule_overrides: object) -> None:
    """The Python API's arguments, checked up front (the CLI's are typed by typer)."""
    if not isinstance(model, (onnx.ModelProto, str, os.PathLike)):
        raise EdgecError(f"model must be a path or an onnx.ModelProto, not {type(model).__name__}")
    if not isinstance(device, str):
        raise EdgecError(f"device must be a device name (str), not {type(device).__name__}")
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise EdgecError(f"threads must be an integer, not {type(threads).__name__}")
    for what, v in (("model", model), ("out_dir", out_dir), ("tuning_log", tuning_log),
                    ("calibration", calibration)):
        if v is not None and not isinstance(v, (str, os.PathLike, onnx.ModelProto)) or (
                what != "model" and isinstance(v, onnx.ModelProto)):
            raise EdgecError(f"{what} must be a path, not {type(v).__name__}")
        if isinstance(v, (str, os.PathLike)) and "\0" in str(os.fspath(v)):
            raise EdgecError(f"{what}: a path cannot contain a NUL character")
    if schedule_overrides is not None and not (
            isinstance(schedule_overrides, dict)
            and all(isinstance(k, str) and isinstance(v, dict) for k, v in schedule_overrides.items())):
        raise EdgecError("schedule_overrides must be a dict of task key -> dict of knobs")

"""`edgec.build`: ONNX model -> bundle directory. Mirrors `edgec build` flag for flag."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from edgec import __version__
from edgec.build_flags import build_flags
from edgec.codegen.executor import build_module, missing_lowerings
from edgec.codegen.module import Codegen
from edgec.errors import EdgecError, ModelError
from edgec.importer import import_model, load_onnx
from edgec.ir import Graph, Node
from edgec.optimize import run_pipeline
from edgec.optimize.memory_plan import plan_memory
from edgec.optimize.passes import dead_node_removal
from edgec.packager import Bundle, mobile, write_bundle
from edgec.packager.bundle import check_out_dir, check_prefix
from edgec.packager.cglue import TensorSpec
from edgec.targets import get_profile
from edgec.toolchain import find_toolchain


@dataclass
class BuildReport:
    ops: dict[str, int]
    nodes: int
    weight_bytes: int
    code_bytes: int
    arena_bytes: int
    arena_naive_bytes: int
    seconds: dict[str, float] = field(default_factory=dict)


def _tensor_specs(g: Graph, names: list[str], offsets: dict[str, int]) -> list[TensorSpec]:
    out = []
    for n in names:
        v = g.values[n]
        out.append(TensorSpec(n, np.dtype(v.dtype).name, list(v.shape), v.nbytes, offsets[n]))
    return out


def _text_bytes(obj: bytes) -> int:
    import io

    from elftools.elf.elffile import ELFFile

    elf = ELFFile(io.BytesIO(obj))
    return sum(s.data_size for s in elf.iter_sections() if s.name.startswith(".text"))


def target_passes(profile, overrides: dict | None = None, threads: int = 1) -> list:  # noqa: ANN001
    """Passes that depend on the device (vector width, registers): run per target on a copy.
    `overrides` (task key -> knobs, from a tuning log) replace the default schedules; `threads`
    sizes per-thread kernel scratch."""
    from edgec.optimize.deconv import prepare_deconv
    from edgec.optimize.direct_conv import fuse_residual_add, prepare_direct_conv
    from edgec.optimize.elementwise_fusion import fuse_elementwise
    from edgec.optimize.gemv import prepare_gemv
    from edgec.optimize.memory_plan import alias_concat_inputs
    from edgec.optimize.pool import prepare_max_pool
    from edgec.optimize.qconv_prepare import prepare_qconv
    from edgec.optimize.weight_quant import current_format, quantize_weights
    from edgec.optimize.winograd import prepare_winograd
    from edgec.sparsity.rnn import sparsify_rnn
    from edgec.sparsity.transform import sparsify_dense

    wq = [("quantize-weights", quantize_weights(profile))] if current_format() != "fp32" else []
    return [("sparsify-dense", sparsify_dense(profile)), ("sparsify-rnn", sparsify_rnn(profile)),
            ("prepare-winograd", prepare_winograd(profile, threads)),
            ("prepare-direct-conv", prepare_direct_conv(profile, overrides)),
            ("prepare-deconv", prepare_deconv(profile)), ("prepare-max-pool", prepare_max_pool(profile)),
            ("prepare-qconv", prepare_qconv(profile)),
            ("prepare-gemv", prepare_gemv(profile, overrides)), *wq, ("fuse-residual-add", fuse_residual_add),
            ("fuse-elementwise", fuse_elementwise), ("dead-node-removal", dead_node_removal),
            ("alias-concat", alias_concat_inputs)]


def _copy_graph(g: Graph) -> Graph:
    """Nodes and the value table copied (values themselves are shared and never mutated)."""
    return Graph(g.name, dict(g.values), [Node(n.op, list(n.inputs), list(n.outputs), dict(n.attrs), n.name)
                                          for n in g.nodes], list(g.inputs), list(g.outputs))


def compile_graph(g: Graph, device: str = "host", name: str = "model",
                  dump: Callable[[str], None] | None = None, threads: int = 1,
                  overrides: dict | None = None, weights_fp16: bool = False):
    """Lower a graph to (profile, plan, kernels object, weights object)."""
    profile = get_profile(device)
    passes = target_passes(profile, overrides, threads)
    if weights_fp16:  # `--quantize fp16`: after the weights are packed (edgec/quantize/fp16.py)
        from edgec.quantize.fp16 import FP16_CONSUMERS, store_weights_fp16

        passes.insert(-2, ("store-weights-fp16", store_weights_fp16(FP16_CONSUMERS)))
    g = run_pipeline(_copy_graph(g), passes, dump=dump, dump_initial=False)
    missing = missing_lowerings(g)
    if missing:
        raise ModelError(f"no kernel for IR op(s): {', '.join(missing)}")
    plan = plan_memory(g)
    try:
        ir_text = build_module(g, plan, profile, name, threads)
    except NotImplementedError as exc:
        raise ModelError(f"cannot generate code: {exc}") from None
    cg = Codegen(profile)
    return profile, plan, cg.emit_object(ir_text), cg.weights_object(f"{name}_weights", plan.weights)


def build(model: onnx.ModelProto | str | os.PathLike, device: str = "host",
          out_dir: str | os.PathLike | None = None, *, name: str = "model",
          input_shapes: dict[str, list[int]] | None = None, threads: int = 1,
          dump_ir: bool | Callable[[str], None] = False,
          progress: Callable[[str], None] | None = None,
          tuning_log: str | os.PathLike | None = None, schedule_overrides: dict | None = None,
          fast_math: str | bool = True, sparsity: str = "auto", sparse_threshold: float = 0.0,
          sparse_code_limit: int = 64 * 1024, quantize: str | None = None,
          calibration: str | os.PathLike | None = None, weights: str = "fp32") -> Bundle:
    """Compile `model` for `device` and write a bundle to `out_dir` (default: ./<name>-<device>).
    `tuning_log` (from `edgec tune`) applies the best measured schedule per task;
    `schedule_overrides` (task key -> knobs) does the same from memory (the tuner's measure).
    `weights` ("fp32", "int8", "fp16"): weight-only compression of the batch-1 dense and RNN
    layers (edgec/optimize/weight_quant.py)."""
    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    _check_arguments(model, device, out_dir, threads, tuning_log, calibration, schedule_overrides)
    if not (isinstance(dump_ir, bool) or callable(dump_ir)) or not (progress is None or callable(progress)):
        raise EdgecError("dump_ir must be True/False or a callable taking a string; progress a callable")
    check_prefix(name)
    phone_profiles = mobile.resolve_devices(device)  # Android/iOS: one bundle, one slice per device
    profile = phone_profiles[0] if phone_profiles else get_profile(device)
    find_toolchain(profile)  # fail before any work if the C toolchain is missing
    if not 1 <= threads <= 16:
        raise EdgecError("--threads must be between 1 and 16")
    out_dir = Path(out_dir or Path.cwd() / f"{name}-{profile.platform if phone_profiles else profile.name}")
    check_out_dir(out_dir.resolve())  # refuse a foreign directory before any work
    if threads > 1 and phone_profiles:
        raise EdgecError("--threads > 1 is not supported for Android/iOS bundles yet; build with --threads 1")
    proto = load_onnx(model)
    if quantize not in (None, "none", "int8", "fp16"):
        raise EdgecError(f"--quantize {quantize!r}: expected int8 or fp16")
    if quantize == "fp16" and phone_profiles:
        raise EdgecError("--quantize fp16 is not supported for Android/iOS bundles yet")
    if quantize == "int8":  # edgec's own calibration -> QDQ model (edgec/quantize/), then as usual
        from edgec.quantize import QuantOptions, load_calibration, quantize_model
        from edgec.quantize.qdq_writer import default_weight_bits

        if calibration is None:
            raise EdgecError("--quantize int8 needs --calibration DIR_OR_NPZ")
        say("quantizing")
        proto = quantize_model(proto, load_calibration(calibration, proto),
                               QuantOptions(weight_bits=default_weight_bits(profile)))
    model_sha = hashlib.sha256(proto.SerializeToString(deterministic=True)).hexdigest()
    say("importing")
    g = import_model(proto, input_shapes)
    t_import = time.perf_counter()
    say("optimizing")
    dump = (print if dump_ir is True else dump_ir) or None
    g = run_pipeline(g, dump=dump)
    t_opt = time.perf_counter()
    say("generating code")
    if quantize not in (None, "none") and (weights or "fp32") != "fp32":
        raise EdgecError("--weights and --quantize exclude each other: choose one")
    flags = build_flags(fast_math, sparsity, sparse_threshold, sparse_code_limit, weights)
    if phone_profiles:
        with flags:
            return _build_phone_bundle(g, phone_profiles, name, out_dir, model_sha, input_shapes, threads,
                                       t0, t_import, t_opt)
    overrides, log_info = dict(schedule_overrides or {}), None
    if tuning_log is not None:
        from edgec.tune.log import load_overrides

        tuned = load_overrides(tuning_log)
        overrides = {**tuned, **overrides}
        log_info = {"sha256": hashlib.sha256(Path(tuning_log).read_bytes()).hexdigest(), "tasks": len(tuned)}
    with flags as flag_opts:
        profile, plan, kobj, wobj = compile_graph(g, device, name, dump, threads, overrides,
                                                  weights_fp16=quantize == "fp16")
    t_cg = time.perf_counter()
    say("packaging")
    report = BuildReport(g.op_counts(), len(g.nodes), len(plan.weights),
                         _text_bytes(kobj) if profile.object_format == "elf" else len(kobj),
                         plan.arena_bytes, plan.sum_of_sizes)
    opts = {"input_shapes": {k: list(map(int, v)) for k, v in sorted((input_shapes or {}).items())},
            "threads": threads, **flag_opts, **({"quantize": quantize} if quantize else {})}
    bundle = write_bundle(
        out_dir or Path.cwd() / f"{name}-{profile.name}", prefix=name, profile=profile, version=__version__,
        kernels_obj=kobj, weights_obj=wobj, weights=plan.weights, arena_bytes=plan.arena_bytes,
        inputs=_tensor_specs(g, g.inputs, plan.offsets), outputs=_tensor_specs(g, g.outputs, plan.offsets),
        manifest_extra={"model_sha256": model_sha, "build_options": opts, "ops": report.ops,
                        "code_text_bytes": report.code_bytes, "tuning_log": log_info}, threads=threads)
    t_end = time.perf_counter()
    report.seconds = {"import": t_import - t0, "optimize": t_opt - t_import, "codegen": t_cg - t_opt,
                      "package": t_end - t_cg, "total": t_end - t0}
    bundle.report = report  # type: ignore[attr-defined]
    return bundle


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


def _build_phone_bundle(g: Graph, profiles: list, name: str, out_dir, model_sha: str,
                        input_shapes: dict[str, list[int]] | None, threads: int,
                        t0: float, t_import: float, t_opt: float) -> Bundle:
    """Android/iOS: code for every slice, then edgec/packager/mobile.py writes the bundle."""
    opts = {"input_shapes": {k: list(map(int, v)) for k, v in sorted((input_shapes or {}).items())},
            "threads": threads}
    bundle, plan, code_bytes = mobile.build_bundle(
        g, profiles, name=name, out_dir=out_dir or Path.cwd() / f"{name}-{profiles[0].platform}",
        version=__version__, manifest_extra={"model_sha256": model_sha, "build_options": opts,
                                             "ops": g.op_counts(), "tuning_log": None})
    t_end = time.perf_counter()
    report = BuildReport(g.op_counts(), len(g.nodes), len(plan.weights), code_bytes, plan.arena_bytes,
                         plan.sum_of_sizes)
    report.seconds = {"import": t_import - t0, "optimize": t_opt - t_import, "codegen": t_end - t_opt,
                      "package": 0.0, "total": t_end - t0}
    bundle.report = report  # type: ignore[attr-defined]
    return bundle

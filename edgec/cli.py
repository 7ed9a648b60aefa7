"""The `edgec` command. Thin: parse, call the library, print. No traceback reaches the user:
errors print one line and exit 2 (bad input) or 1 (failed check / internal error)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgec.cli_args import load_input, output_file_names, parse_bind, parse_shapes
from edgec.cli_devices import register as register_devices
from edgec.cli_estimate import register as register_estimate
from edgec.cli_quant import register as register_quant
from edgec.cli_sparse import register as register_sparse
from edgec.cli_timings import timings_json, timings_table
from edgec.cli_tune import register as register_tune
from edgec.errors import EdgecError, ToolchainError, wrap_unexpected
from edgec.version import __version__

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="edgec: compile ONNX models into small native bundles for edge devices.")
err = Console(stderr=True)
out = Console()


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@app.command()
def build(
    model: Annotated[Path, typer.Argument(help="ONNX model file")],
    device: Annotated[str, typer.Option("--device", "-d", help="device profile (see `edgec devices list`)")] = "host",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="bundle directory")] = None,
    name: Annotated[str, typer.Option(help="C symbol prefix of the model")] = "model",
    input_shape: Annotated[Optional[list[str]], typer.Option(
        "--input-shape", help="fix a dynamic input shape: NAME=D0,D1,... (repeatable)")] = None,
    bind: Annotated[Optional[list[str]], typer.Option(
        "--bind", help="freeze a graph input that decides shapes (axes, pads, starts, sizes, ...) "
                       "to constants: NAME=V1,V2,... (repeatable)")] = None,
    threads: Annotated[int, typer.Option(help="default thread count of the bundle")] = 1,
    dump_ir: Annotated[bool, typer.Option("--dump-ir", help="print the IR after every pass")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the build summary as JSON on stdout")] = False,
    tuning_log: Annotated[Optional[Path], typer.Option(
        "--tuning-log", help="apply the best config per task from `edgec tune`")] = None,
    fast_math: Annotated[str, typer.Option(
        "--fast-math",
        help="on: rational/polynomial math with reassociation, fp16 Winograd F(4,3); off: exact-ish IEEE order")] = "on",
    sparsity: Annotated[str, typer.Option(
        help="sparse weights: auto (cost rule per layer), off (dense), code or bsr (force)")] = "auto",
    sparse_threshold: Annotated[float, typer.Option(
        help="|w| <= this counts as zero in sparse layers (0: exact zeros)")] = 0.0,
    sparse_code_limit: Annotated[int, typer.Option(
        help="estimated .text bytes above which weights-in-code falls back to BSR")] = 64 * 1024,
    quantize: Annotated[Optional[str], typer.Option(
        help="int8 (calibrate + QDQ, needs --calibration) or fp16 (weights stored as float16)")] = None,
    precision: Annotated[str, typer.Option(
        help="float arithmetic: fp32, or fp16 on devices with ARMv8.2 fp16 (rpi5, android-arm64-dotprod)")] = "fp32",
    calibration: Annotated[Optional[Path], typer.Option(
        help="calibration inputs (.npz or a directory of .npz/.npy) for --quantize int8, and for --precision fp16 "
             "(layers whose values leave fp16's range stay fp32)")] = None,
    weights: Annotated[str, typer.Option(
        help="weights of batch-1 dense/GRU/LSTM layers: fp32, int8 (per-row scales) or fp16")] = "fp32",
    cache: Annotated[bool, typer.Option(
        "--cache/--no-cache", help="reuse compiled kernels from ~/.cache/edgec (never changes the bundle)")] = True,
    jobs: Annotated[Optional[int], typer.Option(
        "--jobs", "-j", min=1, max=64, help="LLVM processes (default: EDGEC_JOBS or the CPUs)")] = None,
    timings: Annotated[bool, typer.Option("--timings", help="print where the build time went")] = False,
    profile: Annotated[bool, typer.Option(
        "--profile", help="time every kernel call into a per-layer table (`edgec bench --profile`)")] = False,
) -> None:
    """Compile MODEL for a device and write a bundle."""
    from edgec.compiler import build as do_build

    with err.status("[bold]edgec build[/]") as status:
        bundle = do_build(model, device=device, out_dir=output, name=name,
                          input_shapes=parse_shapes(input_shape or []), bind=parse_bind(bind or []),
                          threads=threads,
                          dump_ir=(lambda s: err.print(s, markup=False, highlight=False)) if dump_ir else False,
                          progress=lambda msg: status.update(f"[bold]edgec build[/]: {msg}"),
                          tuning_log=tuning_log, fast_math=fast_math, sparsity=sparsity,
                          sparse_threshold=sparse_threshold, sparse_code_limit=sparse_code_limit,
                          quantize=quantize, calibration=calibration, weights=weights, cache=cache, jobs=jobs,
                          profile=profile, precision=precision)
    r = bundle.report  # type: ignore[attr-defined]
    summary = {"bundle": str(bundle.path), "device": bundle.manifest["device"], "nodes": r.nodes,
               "ops": r.ops, "weight_bytes": r.weight_bytes, "code_text_bytes": r.code_bytes,
               "arena_bytes": r.arena_bytes, "arena_without_reuse_bytes": r.arena_naive_bytes,
               "seconds": {k: round(v, 3) for k, v in r.seconds.items()},
               **({"timings": timings_json(r)} if timings else {})}
    if as_json:
        print(json.dumps(summary, sort_keys=True))
        return
    t = Table(title=escape(f"built {bundle.path} for "
                           f"{', '.join(bundle.manifest.get('devices', [bundle.manifest['device']]))}"),
              show_header=False)
    t.add_row("kernels", f"{r.nodes} ({', '.join(f'{k}×{v}' for k, v in r.ops.items())})")
    t.add_row("weights", _size(r.weight_bytes))
    t.add_row("code (.text)", _size(r.code_bytes))
    t.add_row("arena", f"{_size(r.arena_bytes)} (without reuse: {_size(r.arena_naive_bytes)})")
    t.add_row("time", f"{r.seconds['total']:.2f} s")
    err.print(t)
    if timings:
        err.print(timings_table(r))


@app.command()
def run(
    bundle: Annotated[Path, typer.Argument(help="bundle directory")],
    input: Annotated[Optional[list[str]], typer.Option("--input", "-i", help="NAME=FILE.npy (repeatable)")] = None,
    random: Annotated[bool, typer.Option("--random", help="feed seeded random inputs")] = False,
    output_dir: Annotated[Optional[Path], typer.Option("--output-dir", "-o", help="save outputs as .npy here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print output summaries as JSON")] = False,
) -> None:
    """Run a bundle on inputs (host bundles in-process; ARM bundles under qemu-user)."""
    from edgec.packager import read_manifest
    from edgec.runner import load

    manifest = read_manifest(bundle)
    feeds = dict(load_input(s, manifest["inputs"]) for s in input or [])
    if random:
        rng = np.random.default_rng(0)
        for t in manifest["inputs"]:
            feeds.setdefault(t["name"], rng.standard_normal(t["shape"]).astype(t["dtype"]))
    files = output_file_names([t["name"] for t in manifest["outputs"]])
    if output_dir is not None and output_dir.exists() and not output_dir.is_dir():
        raise EdgecError(f"--output-dir {output_dir}: exists and is not a directory")
    results = load(bundle).run(feeds)
    summary = {}
    for k, v in results.items():
        summary[k] = {"shape": list(v.shape), "dtype": str(v.dtype),
                      "min": float(v.min()) if v.size else None, "max": float(v.max()) if v.size else None,
                      "mean": float(v.astype(np.float64).mean()) if v.size else None,
                      "first": v.ravel()[:8].tolist()}
    if output_dir is not None:
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
            for k, v in results.items():
                np.save(output_dir / files[k], v)
        except OSError as exc:
            raise EdgecError(f"cannot write outputs to {output_dir}: {exc.strerror or exc}") from None
    if as_json:
        print(json.dumps(summary, sort_keys=True))
        return
    for k, s in summary.items():
        stats = (f"min {s['min']:.6g}  max {s['max']:.6g}  mean {s['mean']:.6g}" if s["min"] is not None
                 else "empty")
        out.print(f"[bold]{escape(shown(k))}[/] {s['dtype']}{escape(str(s['shape']))}  {stats}\n"
                  f"  first: {s['first']}", highlight=False)


def shown(name: str) -> str:
    """A model's name as printed: as is when plain text, else its repr (no control characters,
    no terminal escapes, no fake lines)."""
    return name if name.isprintable() and len(name) <= 200 else repr(name[:200])


@app.command()
def inspect(
    bundle: Annotated[Path, typer.Argument(help="bundle directory")],
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """Show a bundle's target, inputs/outputs, sizes by section and exported symbols."""
    from edgec.packager.inspect import inspect_bundle

    info = inspect_bundle(bundle)
    if as_json:
        print(json.dumps(info, sort_keys=True))
        return
    tg = info["target"]
    out.print(f"[bold]{_t(info['name'])}[/] for [bold]{_t(info['device'])}[/]: {_t(tg.get('triple'))} "
              f"cpu={_t(tg.get('cpu'))} float-abi={_t(tg.get('float_abi'))} (edgec {_t(info['edgec_version'])}, "
              f"from {_t(info['source_format'])})",
              highlight=False)
    io = Table("", "name", "dtype", "shape", "bytes", title="inputs / outputs")
    for kind in ("inputs", "outputs"):
        for t in info[kind]:
            io.add_row(kind[:-1], escape(shown(t["name"])), t["dtype"], str(t["shape"]), str(t["bytes"]))
    out.print(io)
    sizes = Table("object", "machine", ".text", ".rodata", "other", "exported symbols", title="objects")
    for rel, o in info["objects"].items():
        sec = dict(o["sections"])
        text, ro = sec.pop(".text", 0), sec.pop(".rodata", 0)
        sizes.add_row(_t(rel), _t(o["machine"]) + (f" ({_t(o['float_abi'])} float)" if "float_abi" in o else ""),
                      _size(text), _size(ro), _size(sum(sec.values())), _t(", ".join(o["exported"][:12])))
    out.print(sizes)
    _print_slices_and_sizes(info)
    ops = info["ops"] if isinstance(info["ops"], dict) else {}
    out.print(f"arena {_size(info['arena_bytes'])}, weights {_size(info['weight_bytes'])}, "
              f"ops: {_t(', '.join(f'{k}×{v}' for k, v in ops.items()))}", highlight=False)


def _t(v: object) -> str:
    """Text from a bundle's manifest or objects for a rich table: shown literally, never as markup."""
    return escape(shown(str(v)))


def _print_slices_and_sizes(info: dict) -> None:
    """Phone bundles: one row per ABI / iOS slice; every bundle: bytes by origin."""
    if info.get("slices"):
        t = Table("slice", "device", "machine", "float ABI", "min OS / API", "platform", title="slices")
        for s in info["slices"]:
            t.add_row(_t(s.get("abi")), _t(s.get("device")), _t(s.get("machine")), _t(s.get("float_abi", "-")),
                      _t(s.get("min_os") or s.get("min_api") or "-"), _t(s.get("platform") or "android"))
        out.print(t)
    if info.get("sizes"):
        t = Table("slice", "code (kernels)", "weights", "runtime (.text)", "static lib", "shared lib",
                  title="size by origin")
        for r in info["sizes"]:
            t.add_row(_t(r["slice"]), _size(r["code"]), _size(r["weights"]),
                      f"{_size(r['runtime'])} ({_size(r['runtime_text'])})", _size(r["static_library_bytes"]),
                      _size(r["shared_library_bytes"]) if "shared_library_bytes" in r else "-")
        out.print(t)


register_devices(app)  # `edgec devices ...` and `edgec bench` live in edgec/cli_devices.py
register_tune(app)  # `edgec tune` lives in edgec/cli_tune.py
register_estimate(app)  # `edgec estimate` lives in edgec/cli_estimate.py
register_sparse(app)  # `edgec sparsify` lives in edgec/cli_sparse.py
register_quant(app)  # `edgec quantize` / `edgec compare` live in edgec/cli_quant.py


@app.command()
def version() -> None:
    """Print the edgec version."""
    print(__version__)


def main() -> None:
    _quiet_thread_tracebacks()
    _one_line_warnings()
    try:
        rc = app(standalone_mode=False)  # returns typer.Exit codes instead of raising
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except EdgecError as exc:
        _fail(exc)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: typer's (vendored click) own message
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"error: {escape(str(exc))}", highlight=False)
        sys.exit(getattr(exc, "exit_code", 2))
    except Exception as exc:  # anything unexpected: one line, never a traceback
        if os.environ.get("EDGEC_DEBUG"):
            raise
        _fail(wrap_unexpected(exc))


def _one_line_warnings() -> None:
    """edgec's warnings as one line each ("warning: ..."), shown once; others stay silent."""
    import warnings

    from edgec.errors import EdgecWarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
        if issubclass(category, EdgecWarning):
            err.print(f"[bold yellow]warning:[/] {escape(' '.join(str(message).splitlines()))}",
                      highlight=False, soft_wrap=True)

    warnings.showwarning = show
    warnings.simplefilter("once", EdgecWarning)


def _fail(exc: EdgecError) -> None:
    """One line on stderr (model-controlled text cannot add lines or rich markup), then exit."""
    text = str(exc) if isinstance(exc, ToolchainError) else " ".join(str(exc).splitlines())
    err.print(f"[bold red]error:[/] {escape(text)}", highlight=False, soft_wrap=True, markup=True)
    sys.exit(exc.exit_code)


def _quiet_thread_tracebacks() -> None:
    """No thread prints a traceback to a CLI user; EDGEC_DEBUG=1 shows them all.

    When a device dies, paramiko's transport thread logs it ("Socket exception: Connection reset
    by peer", or a traceback for a broken packet) and a helper thread of paramiko's may die of
    it: noise, as the caller gets a DeviceLost for the same drop and reports it in one line.
    So paramiko's records are dropped (`EDGEC_LOG=debug` on the devices commands shows them)
    and a connection error ending a thread is ignored, as is one raised by a finalizer (an SFTP
    file closed by the garbage collector after its connection dropped). Anything else ending a
    thread or escaping a finalizer is a real error: one line (the process is not stopped: its
    work fails through the main thread)."""
    import logging
    import threading

    if os.environ.get("EDGEC_DEBUG"):
        # Show everything, paramiko's records included (edgec.device.ssh only gave it a
        # NullHandler, which keeps records away from logging's last-resort handler).
        logger = logging.getLogger("paramiko")
        if not any(not isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(_stderr_handler())
        return
    logging.getLogger("paramiko").setLevel(logging.CRITICAL + 1)
    threading.excepthook = _thread_excepthook
    sys.unraisablehook = _unraisable_hook


def _connection_error(exc_type: type) -> bool:
    """EOF, a socket error, or one of paramiko's exceptions: a dropped connection."""
    if issubclass(exc_type, (EOFError, ConnectionError, TimeoutError)):
        return True
    if exc_type.__module__.split(".")[0] == "paramiko":
        return True
    return exc_type is OSError  # paramiko's "Socket is closed" (no errno)


def _one_line(what: str, exc_type: type, exc_value: object) -> None:
    text = " ".join(f"{what}: {exc_type.__name__}: {exc_value} (set EDGEC_DEBUG=1 for the traceback)".split())
    err.print(f"[bold red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)


def _thread_excepthook(args) -> None:  # noqa: ANN001 - threading.ExceptHookArgs
    if args.exc_type is SystemExit or _connection_error(args.exc_type):
        return
    _one_line(f"thread {args.thread.name if args.thread is not None else '?'} failed", args.exc_type,
              args.exc_value)


def _unraisable_hook(args) -> None:  # noqa: ANN001 - sys.UnraisableHookArgs
    if _connection_error(args.exc_type):
        return
    where = getattr(args.object, "__qualname__", None) or repr(args.object)  # (a __del__: no address)
    _one_line(f"{args.err_msg or 'Exception ignored in'} {where}", args.exc_type, args.exc_value)


def _stderr_handler():  # noqa: ANN202 - a logging.Handler
    """A logging handler writing to whatever sys.stderr is at the time (main may run in-process)."""
    import logging

    class Handler(logging.StreamHandler):
        @property
        def stream(self):  # noqa: ANN202
            return sys.stderr

        @stream.setter
        def stream(self, value: object) -> None:
            pass

    h = Handler()
    h.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    return h


if __name__ == "__main__":
    main()

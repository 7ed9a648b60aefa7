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

from edgec import __version__
from edgec.cli_quant import register as register_quant
from edgec.cli_sparse import register as register_sparse
from edgec.cli_tune import register as register_tune
from edgec.errors import EdgecError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="edgec: compile ONNX models into small native bundles for edge devices.")
devices_app = typer.Typer(no_args_is_help=True, help="Device profiles.")
app.add_typer(devices_app, name="devices")
err = Console(stderr=True)
out = Console()


def _parse_shapes(specs: list[str]) -> dict[str, list[int]]:
    shapes = {}
    for spec in specs:
        name, _, dims = spec.rpartition("=")
        try:
            if not name:
                raise ValueError
            shapes[name] = [int(d) for d in dims.replace("x", ",").split(",") if d.strip()]
        except ValueError:
            raise EdgecError(f"--input-shape {spec!r}: expected NAME=D0,D1,... (e.g. input=1,3,224,224)") from None
    return shapes


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
    threads: Annotated[int, typer.Option(help="default thread count of the bundle")] = 1,
    dump_ir: Annotated[bool, typer.Option("--dump-ir", help="print the IR after every pass")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the build summary as JSON on stdout")] = False,
    tuning_log: Annotated[Optional[Path], typer.Option(
        "--tuning-log", help="apply the best config per task from `edgec tune`")] = None,
    fast_math: Annotated[str, typer.Option(
        "--fast-math", help="on: rational/polynomial math with reassociation; off: exact-ish IEEE order")] = "on",
    sparsity: Annotated[str, typer.Option(
        help="sparse weights: auto (cost rule per layer), off (dense), code or bsr (force)")] = "auto",
    sparse_threshold: Annotated[float, typer.Option(
        help="|w| <= this counts as zero in sparse layers (0: exact zeros)")] = 0.0,
    sparse_code_limit: Annotated[int, typer.Option(
        help="estimated .text bytes above which weights-in-code falls back to BSR")] = 64 * 1024,
    quantize: Annotated[Optional[str], typer.Option(
        help="int8 (calibrate + QDQ, needs --calibration) or fp16 (weights stored as float16)")] = None,
    calibration: Annotated[Optional[Path], typer.Option(
        help="calibration inputs for --quantize int8: .npz or a directory of .npz/.npy")] = None,
    weights: Annotated[str, typer.Option(
        help="weights of batch-1 dense/GRU/LSTM layers: fp32, int8 (per-row scales) or fp16")] = "fp32",
) -> None:
    """Compile MODEL for a device and write a bundle."""
    from edgec.compiler import build as do_build

    with err.status("[bold]edgec build[/]") as status:
        bundle = do_build(model, device=device, out_dir=output, name=name,
                          input_shapes=_parse_shapes(input_shape or []), threads=threads,
                          dump_ir=(lambda s: err.print(s, markup=False, highlight=False)) if dump_ir else False,
                          progress=lambda msg: status.update(f"[bold]edgec build[/]: {msg}"),
                          tuning_log=tuning_log, fast_math=fast_math, sparsity=sparsity,
                          sparse_threshold=sparse_threshold, sparse_code_limit=sparse_code_limit,
                          quantize=quantize, calibration=calibration, weights=weights)
    r = bundle.report  # type: ignore[attr-defined]
    summary = {"bundle": str(bundle.path), "device": bundle.manifest["device"], "nodes": r.nodes,
               "ops": r.ops, "weight_bytes": r.weight_bytes, "code_text_bytes": r.code_bytes,
               "arena_bytes": r.arena_bytes, "arena_without_reuse_bytes": r.arena_naive_bytes,
               "seconds": {k: round(v, 3) for k, v in r.seconds.items()}}
    if as_json:
        print(json.dumps(summary, sort_keys=True))
        return
    t = Table(title=f"built {bundle.path} for {', '.join(bundle.manifest.get('devices', [bundle.manifest['device']]))}",
              show_header=False)
    t.add_row("kernels", f"{r.nodes} ({', '.join(f'{k}×{v}' for k, v in r.ops.items())})")
    t.add_row("weights", _size(r.weight_bytes))
    t.add_row("code (.text)", _size(r.code_bytes))
    t.add_row("arena", f"{_size(r.arena_bytes)} (without reuse: {_size(r.arena_naive_bytes)})")
    t.add_row("time", f"{r.seconds['total']:.2f} s")
    err.print(t)


def _load_input(spec: str, names: list[str]) -> tuple[str, np.ndarray]:
    name, sep, path = spec.partition("=")
    if not sep:
        if len(names) != 1:
            raise EdgecError(f"--input {spec!r}: name the input (NAME=FILE); the model's inputs are {names}")
        name, path = names[0], spec
    p = Path(path)
    if not p.is_file():
        raise EdgecError(f"input file not found: {p}")
    try:
        if p.suffix == ".npz":
            data = np.load(p)
            return name, data[data.files[0]]
        return name, np.load(p, allow_pickle=False)
    except ValueError as exc:
        raise EdgecError(f"cannot read {p} as a .npy array: {exc}") from None


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
    names = [t["name"] for t in manifest["inputs"]]
    feeds = dict(_load_input(s, names) for s in input or [])
    if random:
        rng = np.random.default_rng(0)
        for t in manifest["inputs"]:
            feeds.setdefault(t["name"], rng.standard_normal(t["shape"]).astype(t["dtype"]))
    results = load(bundle).run(feeds)
    summary = {}
    for k, v in results.items():
        summary[k] = {"shape": list(v.shape), "dtype": str(v.dtype),
                      "min": float(v.min()) if v.size else None, "max": float(v.max()) if v.size else None,
                      "mean": float(v.astype(np.float64).mean()) if v.size else None,
                      "first": v.ravel()[:8].tolist()}
        if output_dir:
            output_dir.mkdir(parents=True, exist_ok=True)
            np.save(output_dir / f"{''.join(c if c.isalnum() or c in '-_.' else '_' for c in k)}.npy", v)
    if as_json:
        print(json.dumps(summary, sort_keys=True))
        return
    for k, s in summary.items():
        out.print(f"[bold]{escape(k)}[/] {s['dtype']}{escape(str(s['shape']))}  min {s['min']:.6g}  max {s['max']:.6g}  "
                  f"mean {s['mean']:.6g}\n  first: {s['first']}", highlight=False)


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
    out.print(f"[bold]{info['name']}[/] for [bold]{info['device']}[/]: {tg['triple']} cpu={tg['cpu']} "
              f"float-abi={tg['float_abi']} (edgec {info['edgec_version']})", highlight=False)
    io = Table("", "name", "dtype", "shape", "bytes", title="inputs / outputs")
    for kind in ("inputs", "outputs"):
        for t in info[kind]:
            io.add_row(kind[:-1], t["name"], t["dtype"], str(t["shape"]), str(t["bytes"]))
    out.print(io)
    sizes = Table("object", "machine", ".text", ".rodata", "other", "exported symbols", title="objects")
    for rel, o in info["objects"].items():
        sec = dict(o["sections"])
        text, ro = sec.pop(".text", 0), sec.pop(".rodata", 0)
        sizes.add_row(rel, o["machine"] + (f" ({o['float_abi']} float)" if "float_abi" in o else ""),
                      _size(text), _size(ro), _size(sum(sec.values())), ", ".join(o["exported"][:12]))
    out.print(sizes)
    _print_slices_and_sizes(info)
    out.print(f"arena {_size(info['arena_bytes'])}, weights {_size(info['weight_bytes'])}, "
              f"ops: {', '.join(f'{k}×{v}' for k, v in info['ops'].items())}", highlight=False)


def _print_slices_and_sizes(info: dict) -> None:
    """Phone bundles: one row per ABI / iOS slice; every bundle: bytes by origin."""
    if info.get("slices"):
        t = Table("slice", "device", "machine", "float ABI", "min OS / API", "platform", title="slices")
        for s in info["slices"]:
            t.add_row(s["abi"], s["device"], str(s.get("machine")), s.get("float_abi", "-"),
                      str(s.get("min_os") or s.get("min_api") or "-"), s.get("platform") or "android")
        out.print(t)
    if info.get("sizes"):
        t = Table("slice", "code (kernels)", "weights", "runtime (.text)", "static lib", "shared lib",
                  title="size by origin")
        for r in info["sizes"]:
            t.add_row(r["slice"], _size(r["code"]), _size(r["weights"]),
                      f"{_size(r['runtime'])} ({_size(r['runtime_text'])})", _size(r["static_library_bytes"]),
                      _size(r["shared_library_bytes"]) if "shared_library_bytes" in r else "-")
        out.print(t)


@devices_app.command("list")
def devices_list(as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
                 registered: Annotated[bool, typer.Option(
                     "--registered", help="list only the registered remote devices")] = False) -> None:
    """List the device profiles `--device` accepts, then the registered remote devices."""
    from edgec.targets import PROFILES, host_profile

    if registered:
        _print_registered(as_json)
        return
    profiles = [host_profile(), *PROFILES.values()]
    if as_json:
        print(json.dumps([p.summary() | {"description": p.description} for p in profiles], sort_keys=True))
        return
    t = Table("device", "triple", "cpu", "description")
    for p in profiles:
        t.add_row(p.name + (f" ({', '.join(p.aliases)})" if p.aliases else ""), p.triple, p.cpu, p.description)
    out.print(t)
    _print_registered(False)


def _print_registered(as_json: bool) -> None:
    from edgec.device import load_devices, registry_path

    devices = load_devices()
    if as_json:
        print(json.dumps([d.to_json() for _, d in sorted(devices.items())], sort_keys=True))
        return
    if not devices:
        out.print(f"no registered devices ({registry_path()}); add one with `edgec devices add`", highlight=False)
        return
    t = Table("device", "address", "profile", "key", "exec wrapper", title=f"registered devices ({registry_path()})")
    for name, d in sorted(devices.items()):
        t.add_row(name, d.address, d.profile, d.key or "(ssh-agent)", d.exec_wrapper or "-")
    out.print(t)


@devices_app.command("add")
def devices_add(
    name: Annotated[str, typer.Argument(help="name for the device, e.g. pi4")],
    host: Annotated[str, typer.Option("--host", help="host name or IP address")],
    user: Annotated[str, typer.Option("--user", help="SSH user")],
    profile: Annotated[str, typer.Option("--profile", help="device profile (see `edgec devices list`)")],
    port: Annotated[int, typer.Option("--port", help="SSH port")] = 22,
    key: Annotated[Optional[str], typer.Option(
        "--key", help="private key file (default: ssh-agent, then ~/.ssh/id_*); passwords are not supported")] = None,
    exec_wrapper: Annotated[Optional[str], typer.Option(
        "--exec-wrapper", help="command that runs the profile's binaries on the device, e.g. qemu-aarch64")] = None,
    known_hosts: Annotated[Optional[str], typer.Option(
        "--known-hosts", help="known_hosts file (default: $EDGEC_KNOWN_HOSTS or ~/.ssh/known_hosts)")] = None,
    remote_tmp: Annotated[Optional[str], typer.Option(
        "--remote-tmp", help="directory for per-run temp dirs on the device (default: $TMPDIR or /tmp)")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="overwrite a device of the same name")] = False,
    trust_new_host: Annotated[bool, typer.Option(
        "--trust-new-host", help="connect now and record the device's host key if it is unknown")] = False,
) -> None:
    """Register a remote device (stored in the user config dir; no secrets are stored)."""
    from edgec.device import Device, DeviceEntry, add_device, registry_path, setup_logging
    from edgec.device.registry import validate

    setup_logging()
    entry = validate(DeviceEntry(name, host, user, profile, port, key or "", exec_wrapper or "",
                                 known_hosts or "", remote_tmp or ""))
    if trust_new_host:  # connect before saving: a failed add leaves nothing behind
        with Device(entry, trust_new_host=True) as dev:
            err.print(f"host key of {entry.address}: {dev.host_key.get_name()} {dev.host_key.fingerprint}",
                      highlight=False)
    add_device(entry, replace=replace)
    err.print(f"added device {name!r} ({entry.address}, profile {entry.profile}) to {registry_path()}",
              highlight=False)


@devices_app.command("remove")
def devices_remove(name: Annotated[str, typer.Argument(help="registered device name")]) -> None:
    """Remove a registered device (its known_hosts entry is left alone)."""
    from edgec.device import registry_path, remove_device

    remove_device(name)
    err.print(f"removed device {name!r} from {registry_path()}", highlight=False)


@devices_app.command("check")
def devices_check(
    name: Annotated[str, typer.Argument(help="registered device name")],
    trust_new_host: Annotated[bool, typer.Option(
        "--trust-new-host", help="record the device's host key if it is unknown")] = False,
    timeout: Annotated[float, typer.Option(help="connect timeout in seconds")] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Connect to a device and report uname, CPU, cores and features, and whether it fits its
    profile (exit 1 when it does not)."""
    from edgec.device import open_device, setup_logging
    from edgec.device.check import check_device

    setup_logging()
    with open_device(name, trust_new_host=trust_new_host, connect_timeout=timeout) as dev:
        report = check_device(dev)
    if as_json:
        print(json.dumps(report, sort_keys=True))
    else:
        t = Table(show_header=False, title=f"device {name} ({report['address']})")
        for k in ("profile", "host_key", "uname", "arch", "cpu", "cores", "exec_wrapper", "runs_binaries_as"):
            t.add_row(k.replace("_", " "), str(report.get(k) if report.get(k) is not None else "-"))
        feats = report["features"]
        t.add_row("features", f"{len(feats)} flags: {' '.join(feats[:16])}{' ...' if len(feats) > 16 else ''}")
        t.add_row("profile needs", " ".join(report["required_features"]) or "-")
        t.add_row("latency", f"{report['latency_ms']:.1f} ms")
        t.add_row("fits profile", "[green]yes[/]" if report["fits"] else "[red]no[/]")
        for p in report["problems"]:
            t.add_row("[red]problem[/]", escape(p))
        for n in report["notes"]:
            t.add_row("note", escape(n))
        out.print(t)
    if not report["fits"]:
        from edgec.errors import CheckFailed

        raise CheckFailed(f"device {name!r} does not fit profile {report['profile']}: {'; '.join(report['problems'])}")


def _us(x: float) -> str:
    return f"{x / 1000:.3f} ms" if x >= 10_000 else f"{x:.1f} µs" if x >= 10 else f"{x:.3f} µs"


@app.command()
def bench(
    target: Annotated[Path, typer.Argument(help="bundle directory, or an ONNX model to build first")],
    device: Annotated[Optional[str], typer.Option(
        "--device", "-d", help="registered device (with --local: a device profile, default host)")] = None,
    local: Annotated[bool, typer.Option("--local", help="run on this machine (qemu-user for ARM bundles)")] = False,
    runs: Annotated[int, typer.Option(help="timed runs (at least)")] = 50,
    warmup: Annotated[int, typer.Option(help="untimed runs first")] = 5,
    min_time: Annotated[float, typer.Option("--min-time", help="keep running for at least S seconds")] = 0.0,
    threads: Annotated[Optional[int], typer.Option(help="threads (default: the bundle's)")] = None,
    seed: Annotated[int, typer.Option(help="seed of the random inputs")] = 0,
    input: Annotated[Optional[list[str]], typer.Option(
        "--input", "-i", help="NAME=FILE.npy instead of random inputs (repeatable)")] = None,
    input_shape: Annotated[Optional[list[str]], typer.Option(
        "--input-shape", help="when building a model: NAME=D0,D1,... (repeatable)")] = None,
    baseline: Annotated[Optional[Path], typer.Option(
        "--baseline", help="compare with a stored `edgec bench --json` result")] = None,
    timeout: Annotated[float, typer.Option(help="seconds before the benchmark is killed")] = 300.0,
    trust_new_host: Annotated[bool, typer.Option(
        "--trust-new-host", help="record the device's host key if it is unknown")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object on stdout")] = False,
) -> None:
    """Benchmark a bundle (or a model, built for the device's profile first) on a registered
    device over SSH, or with --local on this machine."""
    from edgec.device import get_device, open_device, setup_logging
    from edgec.device.bench import BenchOptions, bundle_or_model, compare_baseline
    from edgec.device.bench import bench as do_bench

    setup_logging()
    if not local and not device:
        raise EdgecError("bench: give --device NAME (a registered device, see `edgec devices list`) or --local")
    base = None
    if baseline is not None:
        try:
            base = json.loads(baseline.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise EdgecError(f"--baseline {baseline}: cannot read a JSON result ({exc})") from None
    profile = (device or "host") if local else get_device(device).profile
    opts = BenchOptions(runs=runs, warmup=warmup, min_time_s=min_time, threads=threads, seed=seed, timeout_s=timeout)
    with err.status("[bold]edgec bench[/]") as status, \
            bundle_or_model(target, profile, input_shapes=_parse_shapes(input_shape or [])) as bundle:
        names = [t["name"] for t in bundle.manifest["inputs"]]
        feeds = dict(_load_input(s, names) for s in input) if input else None
        status.update(f"[bold]edgec bench[/]: running on {'this machine' if local else device}")
        if local:
            result = do_bench(bundle, None, opts, feeds)
        else:
            with open_device(device, trust_new_host=trust_new_host) as dev:
                result = do_bench(bundle, dev, opts, feeds)
    stats = result.stats | (compare_baseline(result.stats, base) if base is not None else {})
    if as_json:
        print(json.dumps(stats, sort_keys=True))
        return
    t = Table("device", "target", "runs", "threads", "min", "median", "mean", "p90", title=f"edgec bench {target}")
    t.add_row(stats["device"], stats["target"], str(stats["runs"]), str(stats["threads"]),
              *(_us(stats[k]) for k in ("min_us", "median_us", "mean_us", "p90_us")))
    out.print(t)
    out.print(f"outputs checksum {stats['checksum']} ({stats['inputs']} inputs)", highlight=False)
    if base is not None:
        warn = "" if stats["same_model"] else " [yellow](different model!)[/]"
        out.print(f"baseline median {_us(stats['baseline_median_us'])} -> speed-up "
                  f"{stats['speedup_median']:.3f}x (min: {stats['speedup_min']:.3f}x){warn}", highlight=False)


register_tune(app)  # `edgec tune` lives in edgec/cli_tune.py
register_sparse(app)  # `edgec sparsify` lives in edgec/cli_sparse.py
register_quant(app)  # `edgec quantize` / `edgec compare` live in edgec/cli_quant.py


@app.command()
def version() -> None:
    """Print the edgec version."""
    print(__version__)


def main() -> None:
    try:
        rc = app(standalone_mode=False)  # returns typer.Exit codes instead of raising
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except EdgecError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors and anything unexpected
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if os.environ.get("EDGEC_DEBUG"):
            raise
        err.print(f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))} "
                  "(set EDGEC_DEBUG=1 for a traceback)", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()

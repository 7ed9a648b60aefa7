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
) -> None:
    """Compile MODEL for a device and write a bundle."""
    from edgec.compiler import build as do_build

    with err.status("[bold]edgec build[/]") as status:
        bundle = do_build(model, device=device, out_dir=output, name=name,
                          input_shapes=_parse_shapes(input_shape or []), threads=threads,
                          dump_ir=(lambda s: err.print(s, markup=False, highlight=False)) if dump_ir else False,
                          progress=lambda msg: status.update(f"[bold]edgec build[/]: {msg}"))
    r = bundle.report  # type: ignore[attr-defined]
    summary = {"bundle": str(bundle.path), "device": bundle.manifest["device"], "nodes": r.nodes,
               "ops": r.ops, "weight_bytes": r.weight_bytes, "code_text_bytes": r.code_bytes,
               "arena_bytes": r.arena_bytes, "arena_without_reuse_bytes": r.arena_naive_bytes,
               "seconds": {k: round(v, 3) for k, v in r.seconds.items()}}
    if as_json:
        print(json.dumps(summary, sort_keys=True))
        return
    t = Table(title=f"built {bundle.path} for {bundle.manifest['device']}", show_header=False)
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
    out.print(f"arena {_size(info['arena_bytes'])}, weights {_size(info['weight_bytes'])}, "
              f"ops: {', '.join(f'{k}×{v}' for k, v in info['ops'].items())}", highlight=False)


@devices_app.command("list")
def devices_list(as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False) -> None:
    """List the device profiles `--device` accepts."""
    from edgec.targets import PROFILES, host_profile

    profiles = [host_profile(), *PROFILES.values()]
    if as_json:
        print(json.dumps([p.summary() | {"description": p.description} for p in profiles], sort_keys=True))
        return
    t = Table("device", "triple", "cpu", "description")
    for p in profiles:
        t.add_row(p.name + (f" ({', '.join(p.aliases)})" if p.aliases else ""), p.triple, p.cpu, p.description)
    out.print(t)


@app.command()
def version() -> None:
    """Print the edgec version."""
    print(__version__)


def main() -> None:
    try:
        app(standalone_mode=False)
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

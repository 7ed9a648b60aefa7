"""`edgec estimate MODEL --device rpi4 [--json]`: the cycle model's per-layer table
(edgec/estimate.py, docs/estimate.md); registered on the main app by cli.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from edgec.errors import EdgecError

err = Console(stderr=True)


def estimate_table(report: dict) -> Table:
    from edgec.cli_profile import _shown

    t = Table("layer", "op", "shape", "est. µs", "MAC/cycle", "% peak", "bound",
              title=f"estimate for {report['device']} ({report['cpu']}, llvm-mca -mcpu={report['mca_cpu']}, "
                    f"{report['clock_ghz']:.2f} GHz)")
    for col in t.columns[:3]:
        col.overflow = "fold"
    for x in report["layers"]:
        mpc, frac = x["mac_per_cycle"], x["peak_fraction"]
        t.add_row(_shown(x["name"]), _shown(x["op"], 24), _shown("x".join(map(str, x["shape"] or [])), 24),
                  f"{x['us']:.1f}", "-" if mpc is None else f"{mpc:.2f}", "-" if frac is None else f"{100 * frac:.0f}",
                  x["bound"])
    t.caption = f"{report['total_us']:.1f} µs estimated per run (1 thread) in {len(report['layers'])} kernels"
    return t


def estimate_command(
    model: Annotated[Path, typer.Argument(help="ONNX or .tflite model file")],
    device: Annotated[str, typer.Option("--device", "-d", help="device profile (rpi4, rpi5, host, ...)")] = "host",
    as_json: Annotated[bool, typer.Option("--json", help="print the estimate as JSON")] = False,
    clock_ghz: Annotated[Optional[float], typer.Option(
        "--clock-ghz", help="core clock to convert cycles to time (default: the profile's core)")] = None,
    input_shape: Annotated[Optional[list[str]], typer.Option(
        "--input-shape", help="fix a dynamic input shape: NAME=D0,D1,... (repeatable)")] = None,
    fast_math: Annotated[str, typer.Option("--fast-math", help="on/off, as the build")] = "on",
    weights: Annotated[str, typer.Option(help="fp32, int8 or fp16 weights, as the build")] = "fp32",
    precision: Annotated[str, typer.Option(help="fp32 or fp16 arithmetic, as the build")] = "fp32",
) -> None:
    """Estimate per-layer time on DEVICE from the generated code, with llvm-mca's model of its core."""
    from edgec.cli_args import parse_shapes
    from edgec.estimate import estimate, json_report
    from edgec.importer import load_onnx
    from edgec.options import BuildOptions

    if not model.is_file():
        raise EdgecError(f"{model}: no such model file")
    if clock_ghz is not None and not 0.1 <= clock_ghz <= 10:
        raise EdgecError(f"--clock-ghz {clock_ghz}: expected 0.1 to 10")
    report = estimate(load_onnx(model), device, BuildOptions.from_flags(fast_math, weights=weights, precision=precision),
                      parse_shapes(input_shape or []), clock_ghz)
    if as_json:
        print(json.dumps(json_report(report), indent=1))
    else:
        Console().print(estimate_table(report))


def register(app: typer.Typer) -> None:
    app.command("estimate")(estimate_command)

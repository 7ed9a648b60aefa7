"""`edgec quantize` (int8 QDQ model from calibration data, edgec/quantize/) and `edgec compare`
(per-tensor accuracy report). Registered on the main app by edgec/cli.py."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

err = Console(stderr=True)


def quantize(
    model: Annotated[Path, typer.Argument(help="float ONNX model")],
    calibration: Annotated[Path, typer.Option(
        help=".npz (one array per input, first dim = samples) or a directory of .npz/.npy")],
    output: Annotated[Path, typer.Option("--output", "-o", help="QDQ ONNX model to write")],
    method: Annotated[str, typer.Option(help="activation ranges: minmax, percentile or entropy")] = "minmax",
    per_channel: Annotated[bool, typer.Option("--per-channel/--per-tensor",
                                              help="weight scales per output channel")] = True,
    activations: Annotated[str, typer.Option(help="activation type: u8 or s8")] = "u8",
    limit: Annotated[Optional[int], typer.Option(help="use at most this many samples")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print a summary as JSON on stdout")] = False,
    weight_bits: Annotated[int, typer.Option(
        help="weight range: 8 = [-127, 127], 7 = [-64, 64] (exact and fast on x86 AVX2 "
             "without VNNI), 0 = 7 on such a host, else 8")] = 0,
    keep_fp32: Annotated[Optional[str], typer.Option(
        help="comma-separated nodes left in float: names, output tensors, first, last")] = None,
    bias_correction: Annotated[bool, typer.Option(
        help="empirical bias correction of Conv/Gemm on the calibration data")] = False,
    min_cosine: Annotated[float, typer.Option(
        help="keep the most sensitive layers float until the output cosine vs the float model on "
             "the calibration data reaches this (docs/quantization.md); 0 = every layer int8")] = 0.99,
) -> None:
    """Quantize MODEL to int8 (QDQ format, as onnxruntime's quantize_static writes it)."""
    from edgec.quantize import QuantOptions, quantize_file

    keep = tuple(k.strip() for k in (keep_fp32 or "").split(",") if k.strip())
    q = quantize_file(model, calibration, output, QuantOptions(method, per_channel, activations,
                                                                   weight_bits=weight_bits,
                                                                   keep_fp32=keep,
                                                                   bias_correction=bias_correction,
                                                                   min_cosine=min_cosine),
                      limit)
    ops: dict[str, int] = {}
    for n in q.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    summary = {"output": str(output), "method": method, "per_channel": per_channel,
               "activations": activations, "ops": dict(sorted(ops.items()))}
    if as_json:
        print(json.dumps(summary, sort_keys=True))
        return
    err.print(f"wrote {escape(str(output))}: {ops.get('QuantizeLinear', 0)} quantized activations, "
              f"{method} ranges, {'per-channel' if per_channel else 'per-tensor'} weights, {activations}")


def compare(
    model: Annotated[Path, typer.Argument(help="float ONNX model (the reference)")],
    target: Annotated[Path, typer.Argument(help="quantized .onnx model or a bundle directory")],
    calibration: Annotated[Path, typer.Option(help="inputs: .npz or a directory (as for quantize)")],
    limit: Annotated[Optional[int], typer.Option(help="use at most this many samples")] = None,
    worst: Annotated[int, typer.Option(help="flag this many worst tensors (lowest SQNR)")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON on stdout")] = False,
) -> None:
    """Per-tensor cosine similarity, SQNR (dB) and max abs error of TARGET against MODEL."""
    from edgec.importer import load_onnx
    from edgec.quantize import load_calibration
    from edgec.quantize.compare import compare as do_compare

    proto = load_onnx(model)
    report = do_compare(proto, target, load_calibration(calibration, proto, limit), worst)
    if as_json:
        print(json.dumps(report.to_json(), sort_keys=True))
        return
    t = Table(title=f"{escape(str(target))} vs {escape(str(model))} ({report.samples} samples)")
    for col in ("tensor", "op", "cosine", "SQNR dB", "max abs err", ""):
        t.add_column(col, justify="left" if col in ("tensor", "op", "") else "right")
    for r in report.tensors:
        sq = "inf" if math.isinf(r.sqnr_db) else f"{r.sqnr_db:.1f}"
        t.add_row(escape(r.tensor), r.op, f"{r.cosine:.5f}", sq, f"{r.max_abs_error:.4g}",
                  ("worst " if r.worst else "") + ("output" if r.is_output else ""))
    err.print(t)


def register(app: typer.Typer) -> None:
    app.command("quantize")(quantize)
    app.command("compare")(compare)

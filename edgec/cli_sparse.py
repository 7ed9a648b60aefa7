"""`edgec sparsify`: magnitude pruning to a block pattern (edgec/sparsity/prune.py), with a
per-layer density table. Registered on the main app by edgec/cli.py."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

err = Console(stderr=True)


def sparsify(
    model: Annotated[Path, typer.Argument(help="ONNX model file")],
    output: Annotated[Path, typer.Option("--output", "-o", help="pruned ONNX model to write")],
    pattern: Annotated[str, typer.Option(help="block shape RxC: R inputs x C outputs (1x8, 4x1, 1x1 ...)")] = "1x8",
    density: Annotated[float, typer.Option(help="fraction of blocks to keep per layer, in (0, 1]")] = 0.2,
    as_json: Annotated[bool, typer.Option("--json", help="print the per-layer table as JSON on stdout")] = False,
) -> None:
    """Prune constant MatMul/Gemm/1x1-Conv weights by block magnitude (keeps the largest blocks)."""
    from edgec.sparsity.prune import sparsify_file

    reports = sparsify_file(model, output, pattern, density)
    if as_json:
        print(json.dumps({"output": str(output), "pattern": pattern, "density": density,
                          "layers": [asdict(r) for r in reports]}, sort_keys=True))
        return
    t = Table(title=f"{escape(str(output))}: pattern {escape(pattern)}, keep {density:g} of the blocks")
    for col in ("weight", "op", "shape", "blocks", "kept", "density before", "density after"):
        t.add_column(col, justify="left" if col in ("weight", "op") else "right")
    for r in reports:
        t.add_row(escape(r.weight), r.op, "x".join(map(str, r.shape)), str(r.blocks), str(r.kept_blocks),
                  f"{r.density_before:.3f}", f"{r.density_after:.3f}")
    err.print(t)


def register(app: typer.Typer) -> None:
    app.command("sparsify")(sparsify)

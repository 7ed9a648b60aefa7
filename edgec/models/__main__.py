"""`python -m edgec.models NAME -o FILE.onnx [--resolution R] [--seed S] ...`; no NAME lists models.

Options a generator does not take (e.g. --width for resnet18) are rejected with exit code 2.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

from edgec.models import MODELS

# CLI option -> generator keyword, with its type.
OPTIONS: dict[str, tuple[str, type]] = {
    "--resolution": ("resolution", int),
    "--seed": ("seed", int),
    "--width": ("width", float),
    "--num-classes": ("num_classes", int),
    "--base": ("base", int),
    "--sparsity": ("sparsity", float),
}


def _describe(name: str) -> str:
    fn = MODELS[name]
    params = ", ".join(f"{p.name}={p.default}" for p in inspect.signature(fn).parameters.values())
    doc = (fn.__doc__ or "").strip().splitlines()[0]
    return f"{name}({params})\n    {doc}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgec.models",
                                 description="Write a generated model (seeded random weights) as ONNX.")
    ap.add_argument("model", nargs="?", choices=sorted(MODELS), help="model to generate (omit to list)")
    ap.add_argument("-o", "--output", type=Path, help="output .onnx file")
    for opt, (dest, typ) in OPTIONS.items():
        ap.add_argument(opt, dest=dest, type=typ, default=None)
    ap.add_argument("--list", action="store_true", help="list the models and their parameters")
    args = ap.parse_args(argv)
    if args.list or args.model is None:
        print("\n".join(_describe(n) for n in sorted(MODELS)))
        return 0
    if args.output is None:
        ap.error("-o/--output is required")
    fn = MODELS[args.model]
    accepted = inspect.signature(fn).parameters
    kwargs = {}
    for opt, (dest, _) in OPTIONS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if dest not in accepted:
            ap.error(f"{args.model} does not take {opt}")
        kwargs[dest] = value
    try:
        model = fn(**kwargs)
    except ValueError as exc:
        ap.error(str(exc))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(model.SerializeToString())
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes, {len(model.graph.node)} nodes)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

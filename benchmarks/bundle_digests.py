"""sha256 of every file of the bundles built from the benchmark models, for a "no behaviour
change" check across a refactor: run it on the commit before and on the commit after, then
compare the two JSON files.

    python -m benchmarks.bundle_digests --json before.json            # on the old commit
    python -m benchmarks.bundle_digests --json after.json             # on the new one
    python -m benchmarks.bundle_digests --compare before.json after.json

Each case is built for host, rpi4, rpi3, android-arm64 and ios-arm64 with its own build
keywords, and for the host also with 2 threads, and with sparsity off where the case has a dense
baseline. Builds only; nothing runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

DEVICES = ("host", "rpi4", "rpi3", "android-arm64", "ios-arm64")


def _variants(case) -> list[tuple[str, str, dict]]:  # noqa: ANN001
    kw = dict(case.build_kw)
    out = [(d, "", kw) for d in DEVICES]
    out.append(("host", "threads2", {**kw, "threads": 2}))
    if case.dense_baseline:
        out.append(("host", "dense", {**kw, "sparsity": "off"}))
    return out


def _digest(path: Path) -> dict[str, str]:
    return {str(f.relative_to(path)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(path.rglob("*")) if f.is_file()}


def collect(names: list[str] | None) -> dict[str, dict[str, str]]:
    import edgec
    from benchmarks.cases import CASES

    result: dict[str, dict[str, str]] = {}
    for case in CASES:
        if names and case.name not in names:
            continue
        model = case.make()
        for device, tag, kw in _variants(case):
            key = f"{case.name}/{device}" + (f"/{tag}" if tag else "")
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix="edgec-digest-") as tmp:
                try:
                    edgec.build(model, device=device, out_dir=Path(tmp) / "b",
                                name=f"bench_{case.name}", **kw)
                    result[key] = _digest(Path(tmp) / "b")
                except Exception as exc:  # noqa: BLE001 - a failure is itself a result
                    result[key] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"{key}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return result


def compare(a: dict, b: dict) -> list[str]:
    lines = []
    for key in sorted(set(a) | set(b)):
        fa, fb = a.get(key), b.get(key)
        if fa is None or fb is None:
            lines.append(f"{key}: only in {'second' if fa is None else 'first'}")
            continue
        for f in sorted(set(fa) | set(fb)):
            if fa.get(f) != fb.get(f):
                lines.append(f"{key}: {f} differs")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write the digests here")
    ap.add_argument("--cases", help="comma-separated case names (default: all)")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = ap.parse_args(argv)
    if args.compare:
        diff = compare(*(json.loads(p.read_text()) for p in args.compare))
        print("\n".join(diff) if diff else "identical")
        return 1 if diff else 0
    result = collect(args.cases.split(",") if args.cases else None)
    text = json.dumps(result, indent=1, sort_keys=True)
    if args.json:
        args.json.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

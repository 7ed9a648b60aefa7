"""`python -m tests.fuzz --cases N --seed S [--jobs J] [--json out.json]`: run a campaign,
print counts per class and per mutation, list every case that is neither ok nor clean_error,
and exit 1 if any case is a traceback, crash, hang or security finding."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from tests.fuzz.campaign import Record, as_json, failing, run_campaign
from tests.fuzz.core import CLASSES

SHORT = {
    "ok": "ok",
    "clean_error": "clean",
    "traceback": "tb",
    "crash": "crash",
    "hang": "hang",
    "wrong": "wrong",
    "security": "SEC",
}


def table(records: list[Record]) -> str:
    rows: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        rows[r.mutation][r.cls] += 1
    width = max([len(k) for k in rows] + [8])
    head = f"{'mutation':<{width}} " + " ".join(f"{SHORT[c]:>6}" for c in CLASSES) + "  total"
    lines = [head, "-" * len(head)]
    for mut in sorted(rows):
        c = rows[mut]
        lines.append(
            f"{mut:<{width}} "
            + " ".join(f"{c[k] or '':>6}" for k in CLASSES)
            + f"  {sum(c.values()):>5}"
        )
    total = Counter(r.cls for r in records)
    lines.append("-" * len(head))
    lines.append(
        f"{'total':<{width}} "
        + " ".join(f"{total[k]:>6}" for k in CLASSES)
        + f"  {len(records):>5}"
    )
    return "\n".join(lines)


def findings(records: list[Record]) -> str:
    bad = [r for r in records if r.cls not in ("ok", "clean_error")]
    if not bad:
        return "no findings"
    out = [f"{len(bad)} findings (id, class/reason, mutation: detail -> summary):"]
    for r in bad:
        out.append(f"  {r.id:<10} {r.cls}/{r.reason or '-'}  {r.mutation}: {r.detail[:110]}")
        out.append(f"  {'':<10}   -> {r.summary[:200]}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    ap.add_argument("--cases", type=int, default=200, help="number of cases (indices 0..N-1)")
    ap.add_argument("--seed", default="1", help="campaign seed (case = (seed, index))")
    ap.add_argument("--start", type=int, default=0, help="first index")
    ap.add_argument("--only", type=int, nargs="*", help="run only these indices")
    ap.add_argument("--jobs", type=int, default=1, help="cases run in parallel")
    ap.add_argument("--json", type=Path, help="write every case's record here")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every case as it ends")
    args = ap.parse_args(argv)
    indices = args.only if args.only else range(args.start, args.start + args.cases)
    t0 = time.perf_counter()

    def progress(r: Record) -> None:
        if args.verbose:
            print(
                f"{r.id:<10} {r.seconds:6.2f}s {r.cls:<11} {r.mutation}: {r.detail[:70]}"
                f"\n{'':<19}-> {r.summary[:110]}",
                flush=True,
            )

    records = run_campaign(args.seed, indices, jobs=args.jobs, progress=progress)
    seconds = time.perf_counter() - t0
    print(f"edgec fuzz: seed {args.seed}, {len(records)} cases, {seconds:.0f} s, jobs {args.jobs}")
    print(table(records))
    print(findings(records))
    if args.json:
        args.json.write_text(json.dumps(as_json(args.seed, records, seconds), indent=1))
    bad = failing(records)
    if bad:
        print(f"FAIL: {len(bad)} traceback/crash/hang/security cases", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`edgec build --timings`: where the build time went, per phase and per target (cached
kernels, LLVM processes, the slowest kernels to compile)."""

from __future__ import annotations

from rich.table import Table

from edgec.driver import BuildReport


def timings_json(r: BuildReport) -> dict:
    return {"phases": {k: round(v, 3) for k, v in r.seconds.items()},
            "targets": {name: {"seconds": {k: round(v, 3) for k, v in st.seconds.items()},
                               "kernels": st.kernels, "cached": st.cached, "jobs": st.jobs,
                               "worker_failures": st.worker_failures,
                               "slowest": [[k, round(v, 3)] for k, v in st.slowest]}
                        for name, st in r.targets.items()}}


def timings_table(r: BuildReport) -> Table:
    t = Table(title="build time", show_header=True)
    t.add_column("phase")
    t.add_column("seconds", justify="right")
    t.add_column("")
    for k in ("import", "optimize"):
        if k in r.seconds:
            t.add_row(k, f"{r.seconds[k]:.2f}", "")
    for name, st in r.targets.items():
        note = f"{st.cached} of {st.kernels + 1} objects from the cache, {st.jobs} LLVM process(es)"
        if st.worker_failures:
            note += f"; {st.worker_failures} module(s) compiled here after a worker died"
        t.add_row(f"codegen {name}", f"{sum(st.seconds.values()):.2f}", note)
        for k, v in st.seconds.items():
            t.add_row(f"  {k}", f"{v:.2f}", "")
        for k, v in st.slowest:
            t.add_row("", f"{v:.2f}", f"LLVM: {k}")
    for k in ("package", "total"):
        if k in r.seconds:
            t.add_row(k, f"{r.seconds[k]:.2f}", "")
    return t

"""The table and the bar chart of `python -m benchmarks.run` (its results as run.py makes them)."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table


def fmt_us(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.1f}" if v < 1000 else f"{v:,.0f}"


def _num(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _speedup(e: dict) -> float | None:
    """edgec 1-thread median / 2-thread median."""
    one, two = e.get("run", {}).get("median_us"), e.get("run_2t", {}).get("median_us")
    return one / two if one and two else None


def make_table(results: list[dict], machine: dict) -> Table:
    peak = machine["peak_gflops_1core"]
    title = (f"edgec vs onnxruntime on {machine['cpu']} ({machine['logical_cpus']} logical CPUs, "
             f"{_num(machine['ghz'], '.2f')} GHz x {machine['fp32_flop_per_cycle']} FLOP/cycle: 1-core fp32 "
             f"peak {_num(peak, '.0f')} GFLOP/s)")
    t = Table(title=title, caption="times: median µs per inference unless noted; ratio = edgec / "
              "onnxruntime (1 thread), medians; paired = median over alternating rounds of the "
              "per-round ratio (edgec and onnxruntime 1t are timed interleaved, so drift hits both)")
    for col in ("case", "GFLOP", "build s", "edgec", "edgec min", "runner.run", "ort 1t",
                "ort 1t min", "ort 2t", "ratio", "paired", "edgec 2t", "2t speedup", "GFLOP/s", "% peak",
                "max err", "check"):
        t.add_column(col, justify="left" if col in ("case", "check") else "right")
    for r in results:
        e, o = r["edgec"] or {}, r["onnxruntime"]
        ort1, ort2 = o.get("1", {}), o.get("2", {})
        check = r["check"]
        style = {"ok": "green", "MISMATCH": "bold red"}.get(check, "red")
        t.add_row(
            r["name"], _num(r["flops"] / 1e9 if r["flops"] is not None else None, ".3f"), _num(e.get("build_s"), ".1f"),
            fmt_us(e.get("run", {}).get("median_us")), fmt_us(e.get("run", {}).get("min_us")),
            fmt_us(e.get("runner_run", {}).get("median_us")), fmt_us(ort1.get("median_us")),
            fmt_us(ort1.get("min_us")), fmt_us(ort2.get("median_us")), _num(r.get("ratio_vs_ort1"), ".2f"),
            _num(r.get("ratio_paired"), ".2f"),
            fmt_us(e.get("run_2t", {}).get("median_us")), _num(_speedup(e), ".2f"),
            _num(r.get("gflops"), ".2f"), _num(r.get("peak_pct"), ".1f"),
            _num(r.get("max_abs_err"), ".1e"), f"[{style}]{check}[/]")
    return t


def write_plot(results: list[dict], path: Path) -> bool:
    """Horizontal bars of median time per case and engine (log scale); False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    series = {"edgec": lambda r: (r["edgec"] or {}).get("run", {}).get("median_us"),
              "onnxruntime 1 thread": lambda r: r["onnxruntime"].get("1", {}).get("median_us"),
              "onnxruntime 2 threads": lambda r: r["onnxruntime"].get("2", {}).get("median_us")}
    names = [r["name"] for r in results]
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(names) + 1.5))
    height = 0.8 / len(series)
    for k, (label, get) in enumerate(series.items()):
        vals = [get(r) or float("nan") for r in results]  # no bar where a case failed
        ax.barh([i + k * height for i in range(len(names))], vals, height, label=label)
    ax.set_yticks([i + height for i in range(len(names))], names)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("median time per inference (µs, log scale)")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True

"""`edgec bench --profile`: the per-layer table on the terminal, the Chrome trace and the bar
chart written next to each other (edgec/device/profile_report.py, docs/profiling.md)."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table

from edgec.device.profile_report import write_chart, write_trace


def _shown(text: str, width: int = 48) -> str:
    """A name from the model as table text: printable, bounded, never rich markup."""
    s = text if text.isprintable() else repr(text)
    return escape(s if len(s) <= width else s[: width - 3] + "...")


def write_outputs(report: dict, trace: Path, title: str) -> tuple[Path, Path | None]:
    """The trace at `trace`, the chart beside it (same name, .png) when matplotlib is there."""
    trace_path = write_trace(report, trace, title)
    chart = write_chart(report, trace.with_suffix(".png") if trace.suffix != ".png" else trace.with_name(
        trace.name + ".png"), title)
    return trace_path, chart


def profile_table(report: dict, title: str) -> Table:
    """One row per layer in call order: time per run, share of the kernels' total, MAC/cycle
    (with the fraction of the CPU's fp32 peak) where a clock is known."""
    clock = report["clock"]
    t = Table("layer", "op", "shape", "µs", "share %", "MAC/cycle", "% peak", title=escape(title))
    for col in t.columns[:3]:
        col.overflow = "fold"  # names and shapes wrap on a narrow terminal, never cut
    for x in report["layers"]:
        mpc, frac = x["mac_per_cycle"], x["peak_fraction"]
        t.add_row(_shown(x["name"]), _shown(x["op"], 24), _shown("x".join(map(str, x["shape"] or [])), 24),
                  f"{x['us']:.1f}" if x["us"] >= 10 else f"{x['us']:.2f}", f"{x['share_pct']:.1f}",
                  "-" if mpc is None else f"{mpc:.2f}", "-" if frac is None else f"{100 * frac:.0f}")
    why = ("emulated: cycles are not the device's" if report["emulated"]
           else "no CPU clock known on the device" if not clock else None)
    t.caption = (f"{report['total_us']:.1f} µs per run in {len(report['layers'])} kernels; timer "
                 f"{report['timer']}; MAC/cycle: {why or 'per cycle of the ' + clock + ' clock'}")
    return t

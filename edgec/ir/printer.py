"""Human-readable dump of a graph (what `edgec build --dump-ir` prints)."""

from __future__ import annotations

from edgec.ir.graph import Graph


def _fmt_value(g: Graph, name: str) -> str:
    if not name:
        return "_"
    v = g.values[name]
    shape = "x".join(str(d) for d in v.shape) or "scalar"
    tag = "const " if v.is_const else ""
    return f"%{name}:{tag}{v.dtype.name}[{shape}]"


def _fmt_attr(v: object) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)) and len(v) > 8:
        return f"[{', '.join(map(str, v[:8]))}, ...]"
    return str(v)


def format_graph(g: Graph) -> str:
    lines = [f"graph {g.name}(" + ", ".join(_fmt_value(g, i) for i in g.inputs) + ")"]
    for n in g.nodes:
        attrs = ", ".join(f"{k}={_fmt_attr(v)}" for k, v in sorted(n.attrs.items()) if v is not None)
        outs = ", ".join(_fmt_value(g, o) for o in n.outputs)
        ins = ", ".join(_fmt_value(g, i) for i in n.inputs)
        lines.append(f"  {outs} = {n.op}({ins})" + (f" {{{attrs}}}" if attrs else ""))
    lines.append("  return " + ", ".join(_fmt_value(g, o) for o in g.outputs))
    return "\n".join(lines)

"""No import cycles between edgec's modules: the layers (importer -> ir -> optimize/pipeline ->
codegen -> driver -> packager -> compiler/cli) only import downwards. Every import counts,
also one inside a function (a local import hides a cycle, it does not remove it); only imports
under `if TYPE_CHECKING:` are left out, as they never run. See docs/architecture.md."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "edgec"


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                lines.update(range(sub.lineno, (sub.end_lineno or sub.lineno) + 1))
    return lines


def import_graph() -> dict[str, set[str]]:
    """Module -> the edgec modules it imports. `from edgec.pkg import name` points at the
    submodule `edgec.pkg.name` when there is one, else at `edgec.pkg` itself."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        skip = _type_checking_lines(tree)
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    anchor = anchor[:len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                if t in mods and t != mod:
                    graph[mod].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles between edgec modules:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_cycle_check_sees_local_imports() -> None:
    """The checker itself: a local import that closes a loop is a cycle."""
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(g) == [["a", "b", "c"]]
    graph = import_graph()
    assert "edgec.driver" in graph["edgec.compiler"]
    assert "edgec.compiler" in graph["edgec.cli"]  # a local import inside the build command


def test_kernel_families_do_not_import_each_other() -> None:
    """A family (edgec/kernels/<family>/) builds on codegen, ir, tune's key/space helpers and the
    generic kernels; never on another family, so each one's contract stays in its own package."""
    graph = import_graph()
    wrong = []
    for mod, deps in graph.items():
        parts = mod.split(".")
        if len(parts) < 4 or parts[:2] != ["edgec", "kernels"]:
            continue
        for dep in deps:
            dp = dep.split(".")
            if len(dp) >= 3 and dp[:2] == ["edgec", "kernels"] and dp[2] not in (parts[2], "generic", "spec"):
                wrong.append(f"{mod} -> {dep}")
    assert not wrong, "\n".join(wrong)

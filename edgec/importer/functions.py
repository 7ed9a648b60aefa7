"""Model-local functions: checked, then inlined with onnx.inliner.

The call graph is checked here before onnx sees it: a function that calls itself (directly or
through others) has no finite inlining, a call to a function the model does not define would
only surface later as a confusing unsupported op, and a chain of functions that each call the
previous one twice inlines into 2**depth nodes. All three are refused up front.
"""

from __future__ import annotations

import onnx
import onnx.inliner  # a submodule: `import onnx` alone does not load it

from edgec.errors import ModelError
from edgec.importer.sandbox import isolated
from edgec.importer.validate import MAX_NODES, clean_message, show

# More nodes than any edge model has after inlining; a bound on exponential call trees.
MAX_INLINED_NODES = MAX_NODES
# Domains whose ops come from a runtime, not from the model's own functions.
_OP_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training", "com.microsoft"}

FunctionKey = tuple[str, str, str]


def _key(domain: str, name: str, overload: str) -> FunctionKey:
    return ("" if domain == "ai.onnx" else domain, name, overload)


def _calls(nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """`nodes` and the nodes of their subgraphs (an If branch may call a function too)."""
    out, stack = [], list(nodes)
    while stack:
        node = stack.pop()
        out.append(node)
        for a in node.attribute:
            if a.HasField("g"):
                stack.extend(a.g.node)
            for g in a.graphs:
                stack.extend(g.node)
    return out


def _callees(nodes: list[onnx.NodeProto], funcs: dict[FunctionKey, onnx.FunctionProto],
             local_domains: set[str], owner: str) -> tuple[list[FunctionKey], int]:
    """(local functions called, number of plain nodes) of a node list."""
    called, plain = [], 0
    for node in _calls(nodes):
        key = _key(node.domain, node.op_type, getattr(node, "overload", ""))
        if key in funcs:
            called.append(key)
        elif key[0] in local_domains and key[0] not in _OP_DOMAINS:
            raise ModelError(f"{owner} calls {show(key[0] + '.' + key[1])}, which the model does "
                             "not define (no such local function)")
        else:
            plain += 1
    return called, plain


def _inlined_size(funcs: dict[FunctionKey, onnx.FunctionProto],
                  local_domains: set[str]) -> dict[FunctionKey, int]:
    """Nodes each function becomes once inlined; raises on a call cycle. Iterative DFS."""
    size: dict[FunctionKey, int] = {}
    info = {k: _callees(list(f.node), funcs, local_domains, f"local function {show(f.name)}")
            for k, f in funcs.items()}
    for root in funcs:
        if root in size:
            continue
        path: list[FunctionKey] = []
        on_path: set[FunctionKey] = set()
        stack: list[tuple[FunctionKey, bool]] = [(root, False)]
        while stack:
            key, done = stack.pop()
            if done:
                on_path.discard(key)
                path.pop()
                called, plain = info[key]
                size[key] = min(plain + sum(size[c] for c in called), MAX_INLINED_NODES + 1)
                continue
            if key in size:
                continue
            if key in on_path:
                cycle = " -> ".join(show(k[1]) for k in path[path.index(key):] + [key])
                raise ModelError(f"local functions call each other in a cycle ({cycle}); "
                                 "recursive functions cannot be inlined")
            on_path.add(key)
            path.append(key)
            stack.append((key, True))
            stack.extend((c, False) for c in info[key][0] if c not in size)
    return size


def inline_functions(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with every local function call replaced by the function's body."""
    if not model.functions:
        return model
    funcs: dict[FunctionKey, onnx.FunctionProto] = {}
    for f in model.functions:
        key = _key(f.domain, f.name, getattr(f, "overload", ""))
        if not f.name:
            raise ModelError("a local function has an empty name")
        if key in funcs:
            raise ModelError(f"local function {show(f.domain + '.' + f.name)} is defined twice")
        funcs[key] = f
    local_domains = {k[0] for k in funcs}
    size = _inlined_size(funcs, local_domains)
    called, plain = _callees(list(model.graph.node), funcs, local_domains, "the main graph")
    total = plain + sum(size[c] for c in called)
    if total > MAX_INLINED_NODES:
        raise ModelError(f"inlining the model's local functions would make over "
                         f"{MAX_INLINED_NODES} nodes; nested functions call each other too often")
    try:  # onnx's C++ inliner, isolated like shape inference (edgec/importer/sandbox.py)
        out = isolated(onnx.inliner.inline_local_functions, model, "the ONNX function inliner")
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - onnx raises ValidationError, RuntimeError, ...
        raise ModelError(f"cannot inline the model's local functions: "
                         f"{clean_message(exc)}") from None
    assert out is not None
    return out

"""A kernel's contract: the typed attrs of the internal op it lowers, in one place.

Each kernel family (edgec/kernels/<family>/spec.py) declares, for every internal op it owns, a
`TypedDict` of the node's attrs and registers it with `@kernel_spec("Op")`. The pass that writes
the node, the lowering that reads it and the tuner that re-derives its task all import that one
declaration, and `check_attrs` (run by the pipeline after every pass and by the executor before
lowering) refuses a node whose attrs do not match: a missing or unknown key, or a value of the
wrong type, is a compiler bug caught where it is made instead of a wrong kernel.

Spec modules do not use `from __future__ import annotations`: the TypedDicts' required keys
(`Required`/`NotRequired`) must be evaluated when the class is made.
"""

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints, is_typeddict

from edgec.errors import InternalError

# attrs value types shared by several families
Activation = tuple[str, dict[str, Any]]  # a fused activation: (ONNX op, its attrs)
Ints = list[int]


@dataclass(frozen=True)
class KernelSpec:
    op: str
    attrs: type  # a TypedDict
    parallel: bool  # the kernel splits its work into (task, num_tasks) for the thread pool


SPECS: dict[str, KernelSpec] = {}


def kernel_spec(*ops: str, parallel: bool = False) -> typing.Callable[[type], type]:
    """Register a TypedDict as the attrs spec of `ops`."""
    def register(cls: type) -> type:
        if not is_typeddict(cls):
            raise TypeError(f"{cls.__name__} is not a TypedDict")
        for op in ops:
            SPECS[op] = KernelSpec(op, cls, parallel)
        return cls

    return register


def is_parallel(op: str) -> bool:
    spec = SPECS.get(op)
    return spec is not None and spec.parallel


def _type_name(t: Any) -> str:
    if get_origin(t) is None and hasattr(t, "__name__"):
        return t.__name__
    return str(t).replace("typing.", "")


def _matches(value: Any, t: Any) -> bool:
    if t is Any:
        return True
    if t is type(None) or t is None:
        return value is None
    origin = get_origin(t)
    if origin in (Union, types.UnionType):
        return any(_matches(value, a) for a in get_args(t))
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in get_args(t))
    if is_typeddict(t):
        return isinstance(value, dict) and not _errors(value, t)
    if origin in (list, tuple):
        args = get_args(t)
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))
        return all(_matches(v, args[0]) for v in value) if args else True
    if origin is dict:
        kt, vt = get_args(t)
        return isinstance(value, dict) and all(_matches(k, kt) and _matches(v, vt) for k, v in value.items())
    if t is bool:
        return isinstance(value, bool)
    if t is int:  # a bool is not a count, a float is not an index
        return isinstance(value, int) and not isinstance(value, bool)
    if t is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, t)


def _errors(attrs: dict, spec: type) -> list[str]:
    hints = get_type_hints(spec)
    missing = sorted(spec.__required_keys__ - attrs.keys())
    unknown = sorted(attrs.keys() - hints.keys())
    out = [f"missing {k!r}" for k in missing] + [f"unknown key {k!r}" for k in unknown]
    for k, v in attrs.items():
        if k in hints and not _matches(v, hints[k]):
            shown = repr(v) if len(repr(v)) <= 80 else repr(v)[:77] + "..."
            out.append(f"{k!r} = {shown} is not {_type_name(hints[k])}")
    return out


def attrs_errors(op: str, attrs: dict) -> list[str]:
    """What is wrong with `attrs` for `op` (empty when they match, or `op` has no spec)."""
    spec = SPECS.get(op)
    return _errors(attrs, spec.attrs) if spec is not None else []


def check_attrs(nodes: typing.Iterable) -> None:
    """Raise InternalError naming the first node whose attrs do not match its kernel spec."""
    for n in nodes:
        errs = attrs_errors(n.op, n.attrs)
        if errs:
            raise InternalError(f"IR error: {n.op} node {n.name!r}: attrs do not match its kernel spec "
                                f"({SPECS[n.op].attrs.__name__}): {'; '.join(errs)}")

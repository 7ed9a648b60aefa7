"""The cache key of one kernel, made before its IR is generated (a warm rebuild skips IR
generation too). It covers all a lowering can see: the lowering runs on a graph that holds
only the node and its own values (edgec/codegen/executor.py `kernel_ir`), so anything it reads is
here: op, attributes, each value's name, dtype, shape and constant data, the function name, the
parallel flag, the target profile, the build options, plus edgec's source and LLVM version
(edgec/codegen/objcache.py `toolchain_digest`)."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import struct

import numpy as np

from edgec.codegen.objcache import toolchain_digest
from edgec.ir.graph import Graph, Node
from edgec.options import BuildOptions
from edgec.targets import TargetProfile


class Unkeyable(TypeError):
    """An attribute of a type the key cannot encode: that kernel is compiled, never cached."""


def _encode(h: hashlib._Hash, v: object) -> None:  # type: ignore[name-defined]
    """A canonical, type-tagged encoding (1 and 1.0 and "1" differ; dict order does not matter)."""
    if v is None or isinstance(v, bool):
        h.update(b"N" if v is None else (b"T" if v else b"F"))
    elif isinstance(v, (int, np.integer)):
        h.update(b"i%d;" % int(v))
    elif isinstance(v, (float, np.floating)):
        h.update(b"f" + struct.pack("<d", float(v)))
    elif isinstance(v, str):
        b = v.encode()
        h.update(b"s%d:" % len(b) + b)
    elif isinstance(v, bytes):
        h.update(b"b%d:" % len(v) + v)
    elif isinstance(v, np.ndarray):
        a = np.ascontiguousarray(v)
        h.update(f"a{a.dtype.str}{a.shape}:".encode())
        h.update(a.tobytes() if a.dtype != object else repr(a.tolist()).encode())
    elif isinstance(v, (list, tuple)):
        h.update(b"l%d[" % len(v) if isinstance(v, list) else b"t%d[" % len(v))
        for x in v:
            _encode(h, x)
    elif isinstance(v, dict):
        h.update(b"d%d{" % len(v))
        for k in sorted(v, key=repr):
            _encode(h, k)
            _encode(h, v[k])
    elif isinstance(v, enum.Enum):
        h.update(f"e{type(v).__qualname__}.{v.name};".encode())
    elif isinstance(v, np.dtype):
        h.update(f"D{v.str};".encode())
    elif dataclasses.is_dataclass(v) and not isinstance(v, type):
        h.update(f"c{type(v).__module__}.{type(v).__qualname__}(".encode())
        for f in dataclasses.fields(v):
            h.update(f.name.encode() + b"=")
            _encode(h, getattr(v, f.name))
    else:
        raise Unkeyable(f"cannot key a {type(v).__name__}")


def kernel_key(g: Graph, node: Node, names: list[str], fn_name: str, parallel: bool,
               target: TargetProfile, options: BuildOptions, module_name: str,
               opt_level: int, lowering: str = "") -> str | None:
    """The hex key, or None when an attribute has a type the key cannot encode. `lowering` names
    the function registered for the op (a replaced lowering, as tests do, gets other keys)."""
    h = hashlib.sha256(toolchain_digest())
    try:
        _encode(h, (fn_name, module_name, parallel, opt_level, lowering, node.op, node.name, node.attrs, target,
                    options))
        for n in names:
            v = g.values[n]
            _encode(h, (n, np.dtype(v.dtype), tuple(v.shape)))
            if v.data is not None:
                _encode(h, np.asarray(v.data))
            _encode(h, v.quant)
    except Unkeyable:
        return None
    return h.hexdigest()


def text_key(ir_text: str, target: TargetProfile, opt_level: int) -> str:
    """The key of IR made elsewhere (the graph's entry function): its text and the target."""
    h = hashlib.sha256(toolchain_digest())
    _encode(h, ("text", target, opt_level, ir_text))
    return h.hexdigest()

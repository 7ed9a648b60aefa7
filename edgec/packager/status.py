"""The runtime's status codes and their messages, read from the C runtime itself.

The C sources are the single source of truth: `edgec_status` in `runtime_c/edgec_runtime.h`
gives the codes and their values, `edgec_status_str` in `runtime_c/edgec_runtime.c` the message
of each code. The Java and Swift wrappers render their message tables from `STATUSES`, so
a code or message added to the runtime reaches every binding without a hand-made copy
(docs/runtime-abi.md lists the codes).

Parsing is deliberately strict: a switch case without a code, a code without a case, a duplicate
or a gap in the values raises `StatusTableError` when this module is imported, because the
bindings index their tables by value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime_c"
HEADER = RUNTIME_DIR / "edgec_runtime.h"
SOURCE = RUNTIME_DIR / "edgec_runtime.c"


class StatusTableError(RuntimeError):
    """The runtime's status enum and edgec_status_str do not agree."""


@dataclass(frozen=True)
class Status:
    name: str   # C enumerator, e.g. "EDGEC_ERR_NULL"
    value: int
    text: str   # what edgec_status_str returns for it


_ENUM_RE = re.compile(r"typedef\s+enum\s*\{(?P<body>.*?)\}\s*edgec_status\s*;", re.S)
_ENUMERATOR_RE = re.compile(r"^\s*(?P<name>[A-Z_][A-Z0-9_]*)\s*=\s*(?P<value>\d+)\s*,?\s*$")
_FUNC_RE = re.compile(r"const\s+char\s*\*\s*edgec_status_str\s*\(\s*edgec_status\s+\w+\s*\)\s*\{"
                      r"(?P<body>.*?)\n\}", re.S)
_CASE_RE = re.compile(r'case\s+(?P<name>[A-Z_][A-Z0-9_]*)\s*:\s*return\s+"(?P<text>(?:[^"\\]|\\.)*)"\s*;')
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "?": "?"}


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def _c_unescape(literal: str) -> str:
    def one(m: re.Match) -> str:
        esc = m.group(1)
        if esc in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[esc]
        raise StatusTableError(f"unsupported escape \\{esc} in a status message of {SOURCE.name}")

    return re.sub(r"\\(.)", one, literal)


def parse_enum(header_text: str) -> dict[str, int]:
    """`edgec_status` enumerators and their values, in declaration order."""
    m = _ENUM_RE.search(_strip_comments(header_text))
    if not m:
        raise StatusTableError(f"no `typedef enum {{...}} edgec_status;` in {HEADER.name}")
    codes: dict[str, int] = {}
    for item in m.group("body").split(","):
        if not item.strip():
            continue
        e = _ENUMERATOR_RE.match(item)
        if not e:
            raise StatusTableError(f"{HEADER.name}: cannot read enumerator {item.strip()!r} "
                                   "(every status needs an explicit value)")
        if e.group("name") in codes:
            raise StatusTableError(f"{HEADER.name}: {e.group('name')} declared twice")
        codes[e.group("name")] = int(e.group("value"))
    return codes


def parse_messages(source_text: str) -> dict[str, str]:
    """The cases of `edgec_status_str`: enumerator -> message."""
    m = _FUNC_RE.search(_strip_comments(source_text))
    if not m:
        raise StatusTableError(f"no edgec_status_str definition in {SOURCE.name}")
    body = m.group("body")
    messages: dict[str, str] = {}
    for c in _CASE_RE.finditer(body):
        if c.group("name") in messages:
            raise StatusTableError(f"{SOURCE.name}: edgec_status_str has two cases for {c.group('name')}")
        messages[c.group("name")] = _c_unescape(c.group("text"))
    if len(messages) != len(re.findall(r"\bcase\b", body)):
        raise StatusTableError(f"{SOURCE.name}: every case of edgec_status_str must be "
                               '`case EDGEC_...: return "message";`')
    return messages


def build_table(header_text: str, source_text: str) -> tuple[Status, ...]:
    """Codes joined with their messages, by value; values must be exactly 0..n-1."""
    codes = parse_enum(header_text)
    messages = parse_messages(source_text)
    if set(codes) != set(messages):
        missing = sorted(set(codes) - set(messages))
        extra = sorted(set(messages) - set(codes))
        raise StatusTableError(f"edgec_status and edgec_status_str disagree: no message for {missing}, "
                               f"message for unknown codes {extra}")
    table = sorted((Status(name, value, messages[name]) for name, value in codes.items()),
                   key=lambda s: s.value)
    if [s.value for s in table] != list(range(len(table))):
        raise StatusTableError(f"status values must be 0..{len(table) - 1} without gaps or repeats: "
                               f"{[s.value for s in table]}")
    return tuple(table)


def load() -> tuple[Status, ...]:
    return build_table(HEADER.read_text(encoding="utf-8"), SOURCE.read_text(encoding="utf-8"))


STATUSES: tuple[Status, ...] = load()
# Message of each status, indexed by value (what the Java and Swift tables hold).
STATUS_TEXT: tuple[str, ...] = tuple(s.text for s in STATUSES)

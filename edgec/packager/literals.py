"""Names from a model are data, never code: how they enter generated C, Java and Swift text.

A tensor name in an ONNX file is attacker-controlled. Generated sources carry it only as a string
literal in which every character outside a small safe set is written as an escape, so no name
can close the literal, start a comment, continue a line or form a trigraph (`??/` is a backslash
to a C compiler in C99 mode, which the user's own CMake build may well use). Comments never
carry raw names: `comment_text` keeps a safe, readable rendering.
"""

from __future__ import annotations

import re

# Characters that are literally themselves in C, Java and Swift string literals and in comments,
# whatever precedes or follows them. Deliberately excludes ? (trigraphs), \ " ' * / and all
# whitespace other than the plain space (no line splices, no comment ends, no newlines).
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-+=,;#@()[]{}<>|~^!& ")


def c_string(s: str) -> str:
    """A C string literal holding the UTF-8 bytes of `s`. Unsafe bytes become 3-digit octal
    escapes (a 3-digit octal escape ends by itself, unlike \\x, which would swallow hex digits)."""
    out = []
    for byte in s.encode("utf-8", "surrogatepass"):
        ch = chr(byte)
        out.append(ch if ch in _SAFE else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def java_string(s: str) -> str:
    """A Java string literal equal to `s`. Java turns \\uXXXX into a character *before* lexing, so
    a \\u0022 escape would close the literal: characters below U+0100 use octal escapes (lexed as
    escapes, never pre-processed), others \\uXXXX, which can never be a quote, backslash or line
    terminator."""
    out = []
    for unit in _utf16_units(s):
        ch = chr(unit)
        if ch in _SAFE:
            out.append(ch)
        elif unit < 0x100:
            out.append(f"\\{unit:03o}")
        else:
            out.append(f"\\u{unit:04x}")
    return '"' + "".join(out) + '"'


def swift_string(s: str) -> str:
    """A Swift string literal equal to `s`: unsafe characters as \\u{X} escapes (no interpolation,
    no raw newlines, no multi-line delimiters)."""
    return '"' + "".join(ch if ch in _SAFE else f"\\u{{{ord(ch):x}}}" for ch in s) + '"'


def comment_text(s: str, limit: int = 60) -> str:
    """A rendering of `s` that is safe inside any comment: unsafe characters become `_`, the
    result is cut to `limit` characters."""
    text = "".join(ch if ch in _SAFE and ch not in "<>" else "_" for ch in s)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _utf16_units(s: str) -> list[int]:
    data = s.encode("utf-16-le", "surrogatepass")
    return [int.from_bytes(data[i:i + 2], "little") for i in range(0, len(data), 2)]


# C identifiers that a bundle prefix must not be: the keywords of C99/C11 and names whose
# `<prefix>.h` would shadow a standard or toolchain header in the bundle's include directory.
C_KEYWORDS = frozenset("""auto break case char const continue default do double else enum extern float for
goto if inline int long register restrict return short signed sizeof static struct switch typedef
union unsigned void volatile while _Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary
_Noreturn _Static_assert _Thread_local asm typeof bool true false""".split())
HEADER_NAMES = frozenset("""assert complex ctype errno fenv float inttypes iso646 limits locale math setjmp
signal stdalign stdarg stdatomic stdbool stddef stdint stdio stdlib stdnoreturn string tgmath threads
time uchar wchar wctype pthread unistd sched alloca malloc memory features endian jni arm_neon
arm_fp16 immintrin xmmintrin emmintrin x86intrin cpuid sys linux""".split())
# Java and Swift keywords matter too: the class name is derived from the prefix.
_PREFIX_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}\Z")


def prefix_problem(prefix: object) -> str | None:
    """Why `prefix` cannot be a bundle's symbol prefix, or None if it can."""
    if not isinstance(prefix, str):
        return f"bundle name must be a string, not {type(prefix).__name__}"
    if not _PREFIX_RE.match(prefix):
        return (f"bundle name {prefix[:80]!r} must be a C identifier: a letter, then letters, digits or "
                "_, at most 63 characters")
    if prefix in C_KEYWORDS:
        return f"bundle name {prefix!r} is a C keyword"
    if prefix.lower().startswith("edgec") or prefix.lower().startswith("java_"):
        return f"bundle name {prefix!r} is reserved (edgec* and Java_* are the runtime's symbols)"
    if prefix.lower() in HEADER_NAMES:
        return f"bundle name {prefix!r} would shadow the system header <{prefix}.h>; choose another"
    return None

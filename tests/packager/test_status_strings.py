"""The status messages of the Java and Swift wrappers are exactly the C runtime's.

The runtime (edgec_runtime.h / edgec_runtime.c) is the single source; edgec.packager.status reads
it and the templates render from it. These tests take the truth from a compiled C program, not
from the parser, so a parser that misreads the C, a template that stops using the parsed table,
or a hand-made copy creeping back all fail here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edgec.packager import java_templates, jni_templates, swift_templates
from edgec.packager.cglue import TensorSpec
from edgec.packager.status import (
    HEADER,
    SOURCE,
    STATUS_TEXT,
    STATUSES,
    StatusTableError,
    build_table,
)

_IO = ([TensorSpec("x", "float32", [1, 4], 16, 0)], [TensorSpec("y", "float32", [1, 4], 16, 64)])


@pytest.fixture(scope="module")
def runtime_statuses(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, int, str]]:
    """(name, value, edgec_status_str(value)) for every enumerator, from the compiled runtime;
    also checks that the value after the last one is unknown to edgec_status_str."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler")
    tmp = tmp_path_factory.mktemp("status")
    rows = "\n".join(f'  show("{s.name}", {s.name});' for s in STATUSES)
    (tmp / "t.c").write_text(f"""#include <stdio.h>
#include "edgec_runtime.h"
static void show(const char *name, edgec_status s) {{ printf("%s\\t%d\\t%s\\n", name, (int)s, edgec_status_str(s)); }}
int main(void) {{
{rows}
  printf("NEXT\\t%d\\t%s\\n", {len(STATUSES)}, edgec_status_str((edgec_status){len(STATUSES)}));
  return 0;
}}
""")
    subprocess.run([cc, "-std=c99", "-I", str(HEADER.parent), "t.c", str(SOURCE), "-o", "t"], cwd=tmp,
                   check=True, capture_output=True)
    out = subprocess.run([str(tmp / "t")], check=True, capture_output=True, text=True).stdout
    lines = [line.split("\t") for line in out.splitlines()]
    assert lines[-1] == ["NEXT", str(len(STATUSES)), "unknown status"], "edgec_status_str knows more codes"
    return [(name, int(value), text) for name, value, text in lines[:-1]]


def _java_literal(lit: str) -> str:
    return re.sub(r"\\([0-7]{3})|\\u([0-9a-fA-F]{4})",
                  lambda m: chr(int(m.group(1), 8)) if m.group(1) else chr(int(m.group(2), 16)), lit)


def _swift_literal(lit: str) -> str:
    return re.sub(r"\\u\{([0-9a-fA-F]+)\}", lambda m: chr(int(m.group(1), 16)), lit)


def _java_table(java: str) -> list[str]:
    m = re.search(r"private static final String\[\] STATUS = \{(.*?)\};", java)
    assert m, "the Java class has no STATUS table"
    return [_java_literal(s) for s in re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))]


def _swift_table(swift: str) -> list[str]:
    m = re.search(r"static let statusText = \[(.*?)\]\n", swift)
    assert m, "the Swift wrapper has no statusText table"
    return [_swift_literal(s) for s in re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))]


def test_parser_reads_the_runtime(runtime_statuses: list[tuple[str, int, str]]) -> None:
    assert [(s.name, s.value, s.text) for s in STATUSES] == runtime_statuses
    assert [v for _, v, _ in runtime_statuses] == list(range(len(runtime_statuses)))
    assert list(STATUS_TEXT) == [text for _, _, text in runtime_statuses]


@pytest.mark.parametrize("prefix", ["model", "mobilenet_v2"])
def test_java_and_swift_tables_are_the_runtime_messages(prefix: str,
                                                        runtime_statuses: list[tuple[str, int, str]]) -> None:
    want = [text for _, _, text in runtime_statuses]  # indexed by value
    assert _java_table(java_templates.java_source(prefix, "0", 64, *_IO)) == want
    assert _swift_table(swift_templates.swift_source(prefix, "0", 64, *_IO)) == want


def test_no_hand_copy_in_the_templates() -> None:
    """The templates render the table; none of them spells a message itself."""
    for module in (java_templates, jni_templates, swift_templates):
        text = Path(module.__file__).read_text()
        for s in STATUSES[1:]:  # "ok" is too common a word to look for
            assert s.text not in text, f"{Path(module.__file__).name} copies the message of {s.name}"


_H = "typedef enum {\n  EDGEC_OK = 0,\n  EDGEC_ERR_NULL = 1, /* x */\n  EDGEC_ERR_SIZE = 2\n} edgec_status;\n"
_C = """const char *edgec_status_str(edgec_status status) {
  switch (status) {
    case EDGEC_OK: return "ok";
    case EDGEC_ERR_NULL: return "null";
    case EDGEC_ERR_SIZE: return "size \\"quoted\\"";
  }
  return "unknown status";
}
"""


def test_parser_on_a_consistent_runtime() -> None:
    assert [(s.name, s.value, s.text) for s in build_table(_H, _C)] == [
        ("EDGEC_OK", 0, "ok"), ("EDGEC_ERR_NULL", 1, "null"), ("EDGEC_ERR_SIZE", 2, 'size "quoted"')]


@pytest.mark.parametrize("header, source", [
    (_H.replace("  EDGEC_ERR_SIZE = 2\n", "  EDGEC_ERR_SIZE = 2,\n  EDGEC_ERR_NEW = 3\n"), _C),  # no message
    (_H, _C.replace('    case EDGEC_ERR_SIZE: return "size \\"quoted\\"";\n', "")),           # no message
    (_H, _C.replace("case EDGEC_ERR_SIZE:", "case EDGEC_ERR_SIZE: case EDGEC_ERR_OTHER:")),     # unknown case
    (_H.replace("EDGEC_ERR_SIZE = 2", "EDGEC_ERR_SIZE = 3"), _C),                              # gap
    (_H.replace("EDGEC_ERR_SIZE = 2", "EDGEC_ERR_SIZE"), _C),                                  # implicit value
    (_H.replace("edgec_status;", "edgec_state;"), _C),                                         # no enum
])
def test_parser_refuses_drift(header: str, source: str) -> None:
    with pytest.raises(StatusTableError):
        build_table(header, source)

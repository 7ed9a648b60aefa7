"""A model's names are data, never code (issue 14). Tensor names carry C, Java and Swift
injection payloads: the bundle builds, exports nothing but the model's API, runs correctly, no
payload runs, and the generated Java compiles and the Swift literals decode to the names."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from elftools.elf.elffile import ELFFile
from onnx import TensorProto as T
from onnx import helper

import edgec
from edgec.errors import EdgecError
from edgec.packager import literals
from tests.helpers import assert_close, make_model, rand, run_onnxruntime

MARKER = "EDGEC_PWNED_MARKER"
C_PAYLOAD = ('x??/";\n__attribute__((constructor)) static void pwn(void) { extern int system(const char *); '
             f'system("touch {MARKER}"); }}\nstatic const char *q = "')
NAMES = {
    "a": C_PAYLOAD,
    "b": '*/ int injected = 1; /* \\ \\\\ ??= ??/\n',
    "t": '"); static { System.exit(3); } // \\u0022 + \\u000a',
    "y": '\\(fatalError("swift")) """ \r\n\t%s%n [/] [bold]x[/]',
    "z": "é名 \U0001d11e \u2028 \x7f\x1b[31m",
}


def _hostile_model() -> onnx.ModelProto:
    a, b, t, y, z = (NAMES[k] for k in "abtyz")
    nodes = [helper.make_node("Add", [a, b], [t]), helper.make_node("Relu", [t], [y]),
             helper.make_node("Sigmoid", [t], [z])]
    return make_model(nodes, [(a, T.FLOAT, [2, 5]), (b, T.FLOAT, [2, 5])],
                      [(y, T.FLOAT, [2, 5]), (z, T.FLOAT, [2, 5])])


def _exported(lib: Path) -> set[str]:
    with lib.open("rb") as f:
        elf = ELFFile(f)
        return {s.name for s in elf.get_section_by_name(".dynsym").iter_symbols()
                if s.name and s["st_shndx"] != "SHN_UNDEF" and s["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK")}


def test_injection_payloads_in_names_stay_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    model = _hostile_model()
    b = edgec.build(model, device="host", out_dir=tmp_path / "b")
    feeds = {NAMES["a"]: rand(2, 5, seed=1), NAMES["b"]: rand(2, 5, seed=2)}
    got = edgec.load(b.path).run(feeds)  # also checks the C table's names against the manifest
    want = run_onnxruntime(model, feeds)
    assert list(got) == [NAMES["y"], NAMES["z"]]
    for k, name in enumerate(got):
        assert_close(got[name], want[k], what=f"output {k}")
    assert not (tmp_path / MARKER).exists(), "a payload in a tensor name ran"
    exported = _exported(b.shared_library)
    assert exported and all(s.startswith(("model_", "edgec_")) for s in exported), sorted(exported)
    assert "pwn" not in exported and "injected" not in exported
    # The C glue compiled by the user's own build (C99 *with* trigraphs) still holds only data.
    src = (b.path / "src" / "model_model.c").read_text()
    code = re.sub(r'"(?:[^"\\\n]|\\[0-7]{3})*"', '""', src)  # every literal: safe chars and octal escapes
    assert "??" not in src and "pwn" not in code and "injected" not in code and "system" not in code
    header = (b.path / "include" / "model.h").read_text()
    assert "*/ int" not in header and "\r" not in header
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc:
        proc = subprocess.run([cc, "-std=c99", "-trigraphs", "-Wall", "-Werror", "-fsyntax-only",
                               f"-I{b.path / 'include'}", str(b.path / "src" / "model_model.c")],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def _swift_literal_value(lit: str) -> str:
    assert lit[0] == lit[-1] == '"' and "\n" not in lit and '"' not in lit[1:-1]
    body = lit[1:-1]
    assert re.fullmatch(r'(?:[^\\]|\\u\{[0-9a-f]+\})*', body), body  # only \u{..} escapes
    return re.sub(r"\\u\{([0-9a-f]+)\}", lambda m: chr(int(m.group(1), 16)), body)


def test_swift_and_java_literals_round_trip() -> None:
    for name in NAMES.values():
        assert _swift_literal_value(literals.swift_string(name)) == name
        lit = literals.java_string(name)
        # Java pre-processes \uXXXX before lexing: none may decode to a quote, backslash or newline
        for m in re.finditer(r"(?<!\\)\\u([0-9a-f]{4})", lit):
            assert chr(int(m.group(1), 16)) not in '"\\\n\r'
        c = literals.c_string(name)
        assert "??" not in c and "\n" not in c and "*/" not in c
        text = literals.comment_text(name)
        assert "*/" not in text and "\n" not in text and "??" not in text


@pytest.mark.skipif(shutil.which("javac") is None or shutil.which("java") is None, reason="no JDK (see .ci/run)")
def test_java_binding_compiles_and_holds_the_names(tmp_path: Path) -> None:
    b = edgec.build(_hostile_model(), device="android-x86_64", out_dir=tmp_path / "b").path
    java = next((b / "android" / "java").rglob("*.java"))
    cls = java.stem
    pkg = java.parent.relative_to(b / "android" / "java").as_posix().replace("/", ".")
    dump = tmp_path / "src" / "DumpNames.java"
    dump.parent.mkdir()
    dump.write_text(f"""import {pkg}.{cls};
public class DumpNames {{
    public static void main(String[] a) throws Exception {{
        for ({cls}.TensorInfo t : {cls}.INPUTS) System.out.println(hex(t.name));
        for ({cls}.TensorInfo t : {cls}.OUTPUTS) System.out.println(hex(t.name));
    }}
    static String hex(String s) throws Exception {{
        StringBuilder b = new StringBuilder();
        for (byte x : s.getBytes("UTF-8")) b.append(String.format("%02x", x & 0xff));
        return b.toString();
    }}
}}
""")
    classes = tmp_path / "classes"
    subprocess.run(["javac", "-encoding", "UTF-8", "-d", str(classes), str(java), str(dump)], check=True,
                   capture_output=True, timeout=300)
    out = subprocess.run(["java", "-cp", str(classes), "DumpNames"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    want = [NAMES[k].encode("utf-8").hex() for k in "abyz"]
    assert out.stdout.split() == want


@pytest.mark.parametrize("name", ["edgec", "edgec_x", "int", "stdio", "string", "a-b", "_x", "1x", "x" * 64,
                                  "Java_foo", "object", "", "é"])
def test_reserved_or_bad_bundle_names_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(EdgecError, match="bundle name"):
        edgec.build(_hostile_model(), out_dir=tmp_path / "b", name=name)
    assert not (tmp_path / "b").exists()


def test_colliding_output_names_get_distinct_files(tmp_path: Path) -> None:
    from edgec.cli_args import output_file_names

    files = output_file_names(["a b", "a_b", "A_B", "..", "/etc/passwd", "x" * 300])
    assert len(set(f.lower() for f in files.values())) == 6
    assert all("/" not in f and f not in (".npy", "..npy") and len(f) < 120 for f in files.values())


def test_run_saves_every_output(tmp_path: Path) -> None:
    nodes = [helper.make_node("Relu", ["x"], ["a b"]), helper.make_node("Neg", ["x"], ["a_b"])]
    m = make_model(nodes, [("x", T.FLOAT, [3])], [("a b", T.FLOAT, [3]), ("a_b", T.FLOAT, [3])])
    onnx.save(m, tmp_path / "m.onnx")
    edgec.build(tmp_path / "m.onnx", out_dir=tmp_path / "b")
    x = tmp_path / "x.npy"
    np.save(x, np.array([-1, 0, 2], np.float32))
    import sys

    proc = subprocess.run([sys.executable, "-m", "edgec.cli", "run", str(tmp_path / "b"), "-i", f"x={x}",
                           "-o", str(tmp_path / "res")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    saved = sorted(p.name for p in (tmp_path / "res").iterdir())
    assert len(saved) == 2, saved
    arrays = sorted(np.load(tmp_path / "res" / f).tolist() for f in saved)
    assert arrays == [[0.0, 0.0, 2.0], [1.0, -0.0, -2.0]]

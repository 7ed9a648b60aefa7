"""The JNI bridge and the generated Java class, for real: a JVM loads lib<name>.so through
edgec.models.Model, runs the model and the outputs are compared with onnxruntime. Two builds
of the same bridge: the bundle's android-x86_64 library (the file an emulator would load: it is
freestanding, so a Linux JVM loads it too) and one linked for the host bundle (linux-x86_64)."""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest

import edgec
from edgec.packager.android import jni_library_for_bundle
from edgec.packager.jni_templates import JNI_HEADER
from tests.helpers import assert_close, run_onnxruntime
from tests.mobile.conftest import multi_feeds, multi_model, needs, tanh_model

pytestmark = [needs("java", "javac", "ld.lld"),
              pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 JVM needed")]
TEST_MAIN = Path(__file__).with_name("EdgecJniTest.java")


def _compile(java_root: Path, out: Path) -> Path:
    classes = out / "classes"
    subprocess.run(["javac", "-d", str(classes), str(java_root / "edgec/models/Model.java"), str(TEST_MAIN)],
                   check=True, capture_output=True, timeout=300)
    return classes


def _run_jvm(classes: Path, lib_dir: Path, modes: str, model: onnx.ModelProto, feeds: dict[str, np.ndarray],
             work: Path) -> str:
    ins = []
    for k, inp in enumerate(model.graph.input):
        ins.append(work / f"in{k}.bin")
        ins[-1].write_bytes(np.ascontiguousarray(feeds[inp.name]).tobytes())
    outs = [work / f"out{k}.bin" for k in range(len(model.graph.output))]
    proc = subprocess.run(["java", f"-Djava.library.path={lib_dir}", "-cp", str(classes),
                           "EdgecJniTest", modes, *map(str, ins), *map(str, outs)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    want = run_onnxruntime(model, feeds)
    for mode in modes.split(","):
        for k, o in enumerate(outs):
            got = np.frombuffer(Path(f"{o}.{mode}").read_bytes(), want[k].dtype).reshape(want[k].shape)
            assert_close(got, want[k], what=f"JVM {mode} output {k}")
    return proc.stdout


def test_android_x86_64_library_in_jvm(tmp_path: Path) -> None:
    """run(ByteBuffer...) and the zero-copy buffers, with float32 and int64 tensors."""
    model = multi_model()
    b = edgec.build(model, device="android-x86_64", out_dir=tmp_path / "b").path
    classes = _compile(b / "android" / "java", tmp_path)
    text = _run_jvm(classes, b / "android" / "jniLibs" / "x86_64", "zerocopy,bytes", model, multi_feeds(),
                    tmp_path)
    assert "input a float32 [3, 5] 60" in text and "input l int64 [4] 32" in text
    assert "output d int64 [4] 32" in text
    assert "check wrong-size: expected 3 inputs, got 1" in text
    assert "check closed: Model is closed" in text


def test_host_build_of_the_bridge_in_jvm(tmp_path: Path) -> None:
    """The same bridge and class linked for the host bundle (float[] API); then a library of
    another model under the same class: load() refuses it instead of reading wrong bytes."""
    model = tanh_model()
    b = edgec.build(model, device="host", out_dir=tmp_path / "b").path
    lib = jni_library_for_bundle(b, tmp_path / "jni")
    classes = _compile(tmp_path / "jni" / "android" / "java", tmp_path)
    x = np.linspace(-3, 3, 24, dtype=np.float32).reshape(4, 6)
    text = _run_jvm(classes, lib.parent, "floats,bytes", model, {"x": x}, tmp_path)
    assert "input x float32 [4, 6] 96" in text and "check wrong-size: input x needs 96 bytes, got 1" in text

    other = edgec.build(multi_model(), device="host", out_dir=tmp_path / "b2").path
    stale = jni_library_for_bundle(other, tmp_path / "jni2")
    proc = subprocess.run(["java", f"-Djava.library.path={stale.parent}", "-cp", str(classes), "EdgecJniTest",
                           "floats", str(tmp_path / "in0.bin"), str(tmp_path / "stale.bin")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "libmodel.so does not match Model.java" in proc.stderr


def test_minimal_jni_header_matches_the_jdk(tmp_path: Path) -> None:
    """edgec_jni.h declares only the two JNI slots the bridge calls; the JDK's <jni.h> must put
    them at the same offsets (the JNI function table is append-only across Java versions)."""
    include = Path(shutil.which("javac") or "").resolve().parent.parent / "include"
    (tmp_path / "edgec_jni.h").write_text(JNI_HEADER)
    checks = {"jdk.c": ("#include <jni.h>", "struct JNINativeInterface_"),
              "ours.c": ('#include "edgec_jni.h"', "struct edgec_jni_functions")}
    for name, (inc, table) in checks.items():
        (tmp_path / name).write_text(f"""{inc}
#include <stddef.h>
_Static_assert(offsetof({table}, GetDirectBufferAddress) == 230 * sizeof(void *), "slot 230");
_Static_assert(offsetof({table}, GetDirectBufferCapacity) == 231 * sizeof(void *), "slot 231");
_Static_assert(sizeof(jint) == 4 && sizeof(jlong) == 8, "JNI integer sizes");
""")
        subprocess.run(["cc", "-std=c11", "-fsyntax-only", f"-I{include}", f"-I{include / 'linux'}",
                        f"-I{tmp_path}", str(tmp_path / name)], check=True, capture_output=True)

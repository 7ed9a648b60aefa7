"""Android bundles: several ABIs in one bundle, the .so files checked as the phone's loader sees
them (machine, softfp flag, nothing undefined), and run for real: under qemu-user through a
freestanding driver (static with lib<name>.a, dynamic with the shipped lib<name>.so) and
through the standard runner."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile

import edgec
from edgec.packager.inspect import inspect_bundle
from edgec.packager.jni_templates import jni_symbol
from tests.helpers import assert_close, check_model, run_onnxruntime
from tests.mobile.conftest import (
    ANDROID_TOOLS,
    QEMU,
    multi_feeds,
    multi_model,
    needs,
    tanh_model,
    tools_missing,
)
from tests.mobile.driver import Driver

pytestmark = needs(*ANDROID_TOOLS)
DEVICES = "android-arm64,android-armv7,android-x86_64"
ABIS = {"android-arm64": "arm64-v8a", "android-armv7": "armeabi-v7a", "android-x86_64": "x86_64"}
# Everything the .so may import from the phone: nothing (no libc, no liblog, no NDK libraries).
ALLOWED_UNDEFINED: set[str] = set()
JNI_METHODS = ["nativeStateBytes", "nativeInit", "nativeRun", "nativeNumTensors", "nativeTensorBytes",
               "nativeTensorOffset"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("android") / "b"
    edgec.build(multi_model(), device=DEVICES, out_dir=out)
    return out


def _so(bundle: Path, abi: str) -> bytes:
    return (bundle / "android" / "jniLibs" / abi / "libmodel.so").read_bytes()


def test_layout_and_manifest(bundle: Path) -> None:
    for rel in ("manifest.json", "include/model.h", "include/edgec_runtime.h", "src/edgec_runtime.c",
                "src/model_model.c", "CMakeLists.txt", "examples/main.c", "android/README.md",
                "android/CMakeLists.txt", "android/jni/model_jni.c", "android/jni/edgec_jni.h",
                "android/java/edgec/models/Model.java"):
        assert (bundle / rel).is_file(), rel
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["devices"] == DEVICES.split(",") and m["device"] == "android-arm64" and m["platform"] == "android"
    assert [s["abi"] for s in m["slices"]] == list(ABIS.values())
    for s in m["slices"]:
        assert (bundle / s["static_library"]).is_file() and (bundle / s["shared_library"]).is_file()
        assert s["shared_library"] == f"android/jniLibs/{s['abi']}/libmodel.so" and s["min_api"] == 24
    assert {s["abi"]: s["float_abi"] for s in m["slices"]}["armeabi-v7a"] == "softfp"
    assert set(m["files"]) >= {f"android/jniLibs/{a}/libmodel.so" for a in ABIS.values()}
    java = (bundle / "android/java/edgec/models/Model.java").read_text()
    assert 'new TensorInfo("l", "int64", new long[] {4L}, 32)' in java
    readme = (bundle / "android/README.md").read_text()
    assert 'jniLibs.srcDir("path/to/bundle/android/jniLibs")' in readme and "externalNativeBuild" in readme


@pytest.fixture(scope="module")
def conv_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A conv whose slices differ: arm64 (32 registers) packs its weights in other blocks and
    needs a larger arena than armv7/x86_64."""
    out = tmp_path_factory.mktemp("android-conv") / "b"
    edgec.build(_conv_model(), device=DEVICES, out_dir=out)
    return out


def _conv_model():  # noqa: ANN202
    from onnx import TensorProto as T
    from onnx import helper

    from tests.helpers import make_model, rand

    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1] * 4), helper.make_node("Relu", ["c"], ["y"])]
    return make_model(nodes, [("x", T.FLOAT, [1, 16, 14, 14])], [("y", T.FLOAT, None)],
                      {"w": rand(32, 16, 3, 3, seed=1, low=-0.3, high=0.3), "b": rand(32, seed=2)})


def test_slices_with_their_own_plans(conv_bundle: Path) -> None:
    """Each slice's model table (arena, weight blob size and checksum, I/O offsets) is its own;
    the header's arena is the largest. Every slice verifies its weights and matches onnxruntime."""
    m = json.loads((conv_bundle / "manifest.json").read_text())
    per = {s["abi"]: (s["arena_bytes"], s["weight_bytes"]) for s in m["slices"]}
    assert per["arm64-v8a"] != per["x86_64"], per  # the case this test is about
    assert m["arena_bytes"] == max(a for a, _ in per.values())
    assert f"#define MODEL_ARENA_BYTES {m['arena_bytes']}u" in (conv_bundle / "include/model.h").read_text()
    glue = (conv_bundle / "src/model_model.c").read_text()
    assert "#if defined(__aarch64__)" in glue and "#elif defined(__arm__)" in glue and "#error" in glue
    x = np.random.default_rng(3).standard_normal((1, 16, 14, 14)).astype(np.float32)
    want = run_onnxruntime(_conv_model(), {"x": x})[0]
    for device in ABIS:
        if tools_missing(QEMU[device]):
            continue
        drv = Driver(conv_bundle, device, dynamic=False)
        try:
            got = drv.run([x], [((1, 32, 14, 14), np.float32)])[0]
        finally:
            drv.close()
        assert_close(got, want, what=f"{device} conv")


@pytest.mark.parametrize("device", list(ABIS))
def test_shared_library_elf(bundle: Path, device: str) -> None:
    elf = ELFFile(io.BytesIO(_so(bundle, ABIS[device])))
    machine = {"android-arm64": "EM_AARCH64", "android-armv7": "EM_ARM", "android-x86_64": "EM_X86_64"}
    assert elf["e_machine"] == machine[device] and elf["e_type"] == "ET_DYN"
    if device == "android-armv7":
        assert elf["e_flags"] & 0x200 and not elf["e_flags"] & 0x400  # EF_ARM_ABI_FLOAT_SOFT, not HARD
        assert elf.elfclass == 32
    dyn = elf.get_section_by_name(".dynamic")
    tags = {t.entry.d_tag: t for t in dyn.iter_tags()}
    assert tags["DT_SONAME"].soname == "libmodel.so"
    assert "DT_NEEDED" not in tags and "DT_TEXTREL" not in tags
    syms = list(elf.get_section_by_name(".dynsym").iter_symbols())
    undefined = {s.name for s in syms if s.name and s["st_shndx"] == "SHN_UNDEF"}
    assert undefined <= ALLOWED_UNDEFINED, undefined
    exported = {s.name for s in syms if s.name and s["st_shndx"] != "SHN_UNDEF"}
    assert {jni_symbol("model", n) for n in JNI_METHODS} <= exported
    assert {"model_init", "model_run", "model_info"} <= exported
    assert not any(n.startswith(("__aeabi", "__divdi3", "__udiv")) for n in exported)  # libgcc stays hidden
    assert all(seg["p_align"] == 16384 for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD")


@needs("llvm-objdump")
def test_arm64_code_leaves_x18_alone(bundle: Path, tmp_path: Path) -> None:
    """Android reserves x18 (shadow call stack): neither LLVM's code nor gcc's may touch it."""
    from edgec.toolchain.lld import find_versioned

    so = tmp_path / "libmodel.so"
    so.write_bytes(_so(bundle, "arm64-v8a"))
    asm = subprocess.run([find_versioned("llvm-objdump", "llvm"), "-d", str(so)], capture_output=True,
                         text=True, check=True).stdout
    assert "model_graph_run" in asm
    insns = [ln for ln in asm.splitlines() if re.match(r"\s+[0-9a-f]+:", ln)]
    assert len(insns) > 100
    assert not [ln for ln in insns if re.search(r"(?<![0-9a-z_])[xw]18\b", ln)]


@pytest.mark.arm
@pytest.mark.parametrize("device,dynamic", [("android-arm64", False), ("android-arm64", True),
                                            ("android-armv7", False), ("android-armv7", True),
                                            ("android-x86_64", True)])
def test_runs_under_qemu(bundle: Path, device: str, dynamic: bool) -> None:
    """Static: driver + lib<name>.a. Dynamic: the shipped lib<name>.so loaded by ld.so."""
    if tools_missing(QEMU[device]):
        pytest.skip(f"{QEMU[device]} not installed")
    feeds = multi_feeds()
    want = run_onnxruntime(multi_model(), feeds)
    drv = Driver(bundle, device, dynamic)
    try:
        got = drv.run([feeds["a"], feeds["b"], feeds["l"]], [((3, 5), np.float32), ((4,), np.int64)])
    finally:
        drv.close()
    for k in range(2):
        assert_close(got[k], want[k], what=f"{device} output {k}")


def test_size_budget(bundle: Path) -> None:
    """Runtime <= 10 KB of code per ABI; the .so beyond kernels and weights (runtime, JNI bridge,
    libgcc helpers, dynamic tables) stays small too."""
    info = inspect_bundle(bundle)
    rows = {r["slice"]: r for r in info["sizes"]}
    assert set(rows) == set(ABIS.values())
    for abi, r in rows.items():
        assert 0 < r["runtime_text"] <= 10 * 1024, (abi, r)
        assert r["code"] > 0 and r["weights"] >= info["weight_bytes"]
        assert r["runtime"] + r["shared_library_other"] <= 16 * 1024, (abi, r)
        assert r["shared_library_bytes"] == len(_so(bundle, abi))


def test_reproducible(bundle: Path, tmp_path: Path) -> None:
    again = edgec.build(multi_model(), device=DEVICES, out_dir=tmp_path / "again").path
    files = sorted(p.relative_to(bundle) for p in bundle.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (bundle / rel).read_bytes() == (again / rel).read_bytes(), f"{rel} differs"


def test_inspect_cli_prints_size_table(bundle: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "edgec.cli", "inspect", str(bundle)], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "size by origin" in proc.stdout and "armeabi-v7a" in proc.stdout and "soft" in proc.stdout
    info = json.loads(json.dumps(inspect_bundle(bundle)))  # what `edgec inspect --json` prints
    assert [s["machine"] for s in info["slices"]] == ["EM_AARCH64", "EM_ARM", "EM_X86_64"]
    assert info["objects"]["android/jniLibs/armeabi-v7a/libmodel.so"]["float_abi"] == "soft"


@needs("cmake")
def test_cmake_builds_a_slice(bundle: Path, tmp_path: Path) -> None:
    """The bundle's CMake project with -DEDGEC_SLICE=x86_64 (as ANDROID_ABI would pick it)."""
    build = tmp_path / "build"
    subprocess.run(["cmake", "-S", str(bundle), "-B", str(build), "-DEDGEC_SLICE=x86_64"], check=True,
                   capture_output=True)
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
    feeds = multi_feeds()
    ins = []
    for k, name in enumerate(("a", "b", "l")):
        ins.append(tmp_path / f"in{k}.bin")
        ins[-1].write_bytes(feeds[name].tobytes())
    outs = [tmp_path / "s.bin", tmp_path / "d.bin"]
    subprocess.run([str(build / "model_main"), *map(str, ins), *map(str, outs)], check=True)
    want = run_onnxruntime(multi_model(), feeds)
    assert_close(np.frombuffer(outs[0].read_bytes(), np.float32).reshape(3, 5), want[0])
    np.testing.assert_array_equal(np.frombuffer(outs[1].read_bytes(), np.int64), want[1])


@pytest.mark.arm
@pytest.mark.parametrize("device", [*ABIS, "android-arm64-dotprod"])
def test_standard_runner(device: str) -> None:
    """edgec.load() on a one-ABI bundle: in-process for x86_64, qemu for the ARM ABIs."""
    if tools_missing(QEMU[device]):
        pytest.skip(f"{QEMU[device]} not installed")
    x = np.linspace(-3, 3, 24, dtype=np.float32).reshape(4, 6)
    check_model(tanh_model(), {"x": x}, device=device)

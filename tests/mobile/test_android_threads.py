"""Android bundles built with --threads 2 (issue 18, scope 6): the pthread pool in lib<name>.a
and lib<name>.so (linked against bionic's libc.so only, edgec/packager/android.py). A glibc C
driver linked with the arm64 static library runs under qemu-aarch64 with 1 and 2 threads: two
threads really run (one worker thread appears at init) and the outputs are bit-identical."""

from __future__ import annotations

import io
import json
import platform
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile

import edgec
from edgec.packager.android import LIBC_IMPORTS, POOL_LIBC
from edgec.packager.bundle import RUNTIME_DIR
from tests.helpers import run_onnxruntime
from tests.mobile.conftest import ANDROID_TOOLS, needs, tools_missing
from tests.mobile.test_android import _conv_model

pytestmark = needs(*ANDROID_TOOLS, "qemu-aarch64")

DRIVER_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model.h"

static unsigned char arena[MODEL_ARENA_BYTES] __attribute__((aligned(64)));

static int os_threads(void) { /* this process's threads, as the kernel counts them */
  char line[256];
  int n = -1;
  FILE *f = fopen("/proc/self/status", "r");
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "Threads:", 8) == 0) n = atoi(line + 8);
  if (f) fclose(f);
  return n;
}

int main(int argc, char **argv) {
  edgec_ctx ctx;
  int threads = atoi(argv[1]), before = os_threads(), i;
  if (model_init(&ctx, arena, sizeof arena, threads) != EDGEC_OK) return 3;
  fprintf(stderr, "num_threads=%d max_threads=%d pool=%d workers=%d\n", ctx.num_threads,
          (int)model_info.max_threads, ctx.pool != 0, os_threads() - before);
  for (i = 0; i < model_info.num_inputs; ++i)
    if (fread(model_input_ptr(&ctx, i), 1, model_info.inputs[i].bytes, stdin) != model_info.inputs[i].bytes)
      return 4;
  for (int rep = 0; rep < 3; ++rep)
    if (model_run(&ctx) != EDGEC_OK) return 5;
  for (i = 0; i < model_info.num_outputs; ++i)
    fwrite(model_output_ptr(&ctx, i), 1, model_info.outputs[i].bytes, stdout);
  return model_deinit(&ctx) == EDGEC_OK ? 0 : 6;
}
"""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("android-threads") / "b"
    edgec.build(_conv_model(), device="android-arm64,android-armv7,android-x86_64", out_dir=out, threads=2)
    return out


def test_pool_in_every_slice(bundle: Path) -> None:
    """Every slice's .a and .so holds the pool; the .so needs libc.so for POOL_LIBC and nothing
    else; the glue, the Java class and both CMake projects know the thread count."""
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["build_options"]["threads"] == 2 and (bundle / "src/edgec_threads.c").is_file()
    used = set(re.findall(r"\b(pthread_[a-z_]+|clock_gettime)\s*\(", (RUNTIME_DIR / "edgec_threads.c").read_text()))
    assert used == set(POOL_LIBC)
    for s in m["slices"]:
        elf = ELFFile(io.BytesIO((bundle / s["shared_library"]).read_bytes()))
        dyn = elf.get_section_by_name(".dynamic")
        assert [t.needed for t in dyn.iter_tags() if t.entry.d_tag == "DT_NEEDED"] == ["libc.so"], s["abi"]
        undefined = {x.name for x in elf.get_section_by_name(".dynsym").iter_symbols()
                     if x.name and x["st_shndx"] == "SHN_UNDEF"}
        assert undefined <= set(LIBC_IMPORTS) and "pthread_create" in undefined, (s["abi"], undefined)
        assert b"edgec_pool_start" in (bundle / s["static_library"]).read_bytes()
    assert "public static final int THREADS = 2;" in (bundle / "android/java/edgec/models/Model.java").read_text()
    assert "src/edgec_threads.c" in (bundle / "android/CMakeLists.txt").read_text()
    assert "Threads::Threads" in (bundle / "CMakeLists.txt").read_text()


HOST_LIBC = "/lib/x86_64-linux-gnu/libc.so.6"
# Android ABI -> (glibc cross compiler, how to run its executables here)
RUN = {"arm64-v8a": ("aarch64-linux-gnu-gcc", ("qemu-aarch64", "-L", "/usr/aarch64-linux-gnu")),
       "armeabi-v7a": ("arm-linux-gnueabi-gcc", ("qemu-arm", "-L", "/usr/arm-linux-gnueabi")),
       "x86_64": ("cc", ())}


@pytest.mark.parametrize("abi", list(RUN))
def test_two_threads_under_qemu(bundle: Path, tmp_path: Path, abi: str) -> None:
    """The acceptance test (arm64; armv7 and x86_64 alike): the slice's static library and a glibc
    driver, 1 vs 2 threads, under qemu-user."""
    cc, wrapper = RUN[abi]
    if abi == "armeabi-v7a" and tools_missing("qemu-arm"):
        pytest.skip("qemu-arm not installed")
    lib = bundle / "lib" / abi / "libmodel.a"
    assert b"edgec_parallel_for" in lib.read_bytes()  # the kernels hand work to the pool
    flags = ("-march=armv7-a", "-mfloat-abi=softfp", "-mfpu=neon") if abi == "armeabi-v7a" else ()
    (tmp_path / "driver.c").write_text(DRIVER_C)
    subprocess.run([cc, *flags, "-O1", "-I", str(bundle / "include"), "driver.c", str(lib), "-lpthread",
                    "-o", "driver"], cwd=tmp_path, check=True, capture_output=True)
    x = np.random.default_rng(5).standard_normal((1, 16, 14, 14)).astype(np.float32)
    outs, logs = {}, {}
    for n in (1, 2):
        proc = subprocess.run([*wrapper, str(tmp_path / "driver"), str(n)],
                              input=x.tobytes(), capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr[-400:]
        outs[n], logs[n] = np.frombuffer(proc.stdout, np.float32), proc.stderr.decode()
    assert "num_threads=1 max_threads=2 pool=0 workers=0" in logs[1], logs[1]
    assert "num_threads=2 max_threads=2 pool=1 workers=1" in logs[2], logs[2]
    np.testing.assert_array_equal(outs[1], outs[2])
    [want] = run_onnxruntime(_conv_model(), {"x": x})
    np.testing.assert_allclose(outs[2].reshape(want.shape), want, rtol=1e-4, atol=1e-4)


@needs("java", "javac")
@pytest.mark.skipif(platform.machine() != "x86_64" or not Path(HOST_LIBC).is_file(), reason="x86-64 glibc JVM")
def test_java_default_threads_in_jvm(bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The x86_64 .so under the generated class in a desktop JVM: load() starts THREADS (2)
    threads. The .so's DT_NEEDED libc.so is glibc's libc.so.6 here (bionic's on a phone)."""
    from tests.mobile.test_jvm import _compile, _run_jvm

    libs = tmp_path / "libs"
    libs.mkdir()
    shutil.copyfile(bundle / "android/jniLibs/x86_64/libmodel.so", libs / "libmodel.so")
    (libs / "libc.so").symlink_to(HOST_LIBC)
    monkeypatch.setenv("LD_LIBRARY_PATH", str(libs))
    classes = _compile(bundle / "android" / "java", tmp_path)
    x = np.random.default_rng(6).standard_normal((1, 16, 14, 14)).astype(np.float32)
    text = _run_jvm(classes, libs, "floats,bytes", _conv_model(), {"x": x}, tmp_path)
    assert "input x float32 [1, 16, 14, 14]" in text

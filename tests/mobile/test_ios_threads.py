"""iOS bundles built with --threads 2 (issue 18, scope 6). iOS code cannot run here: every
slice's archive holds the pool and needs only compiler-rt and the pool's libSystem functions,
and the arm64 device slice links into an executable with ld64.lld against a stub libSystem.tbd
(the symbols the pool imports, as the iOS SDK's libSystem.tbd lists them)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import edgec
from edgec.packager.ios import COMPILER_RT, LIBSYSTEM
from edgec.packager.macho import macho_info, read_archive
from tests.mobile.conftest import IOS_TOOLS, multi_model, needs, tools_missing
from tests.mobile.test_android import _conv_model

pytestmark = needs(*IOS_TOOLS)
DEVICES = "ios-arm64,ios-arm64-simulator,ios-x86_64-simulator"

MAIN_C = r"""
#include "model.h"
static unsigned char arena[MODEL_ARENA_BYTES] __attribute__((aligned(64)));
int main(void) {
  edgec_ctx ctx;
  if (model_init(&ctx, arena, sizeof arena, 2) != EDGEC_OK) return 1;
  if (model_run(&ctx) != EDGEC_OK) return 2;
  return model_deinit(&ctx) == EDGEC_OK ? 0 : 3;
}
"""


def test_every_slice_holds_the_pool(tmp_path: Path) -> None:
    b = edgec.build(multi_model(), device=DEVICES, out_dir=tmp_path / "b", threads=2).path
    assert (b / "src/edgec_threads.c").is_file()
    swift = next((b / "ios" / "Swift").glob("*.swift")).read_text()
    assert "public static let threads = 2" in swift and "init(numThreads: Int = 2)" in swift
    for name in DEVICES.split(","):
        defined: set[str] = set()
        undefined: set[str] = set()
        members = read_archive((b / "lib" / name / "libmodel.a").read_bytes())
        assert "edgec_threads.o" in [m for m, _ in members], name
        for member, obj in members:
            info = macho_info(obj, member)
            defined |= set(info["exported"]) | set(info["hidden"])
            undefined |= set(info["undefined"])
        assert "_pthread_create" in undefined - defined and undefined - defined <= COMPILER_RT | LIBSYSTEM


@pytest.mark.skipif(bool(tools_missing("ld64.lld")), reason="ld64.lld not installed")
def test_device_slice_links(tmp_path: Path) -> None:
    from edgec.toolchain.lld import find_versioned

    b = edgec.build(_conv_model(), device="ios-arm64", out_dir=tmp_path / "b", threads=2).path
    syms = ", ".join(sorted(LIBSYSTEM | {"dyld_stub_binder"}))
    (tmp_path / "libSystem.tbd").write_text(
        f"--- !tapi-tbd\ntbd-version: 4\ntargets: [ arm64-ios ]\ninstall-name: '/usr/lib/libSystem.B.dylib'\n"
        f"exports:\n  - targets: [ arm64-ios ]\n    symbols: [ {syms} ]\n...\n")
    (tmp_path / "main.c").write_text(MAIN_C)
    subprocess.run([find_versioned("clang", "clang"), "-target", "arm64-apple-ios14.0", "-ffreestanding", "-O1",
                    "-I", str(b / "include"), "-c", "main.c"], cwd=tmp_path, check=True, capture_output=True)
    proc = subprocess.run([find_versioned("ld64.lld", "lld"), "-arch", "arm64", "-platform_version", "ios",
                           "14.0", "14.0", "-o", "app", "main.o", str(b / "lib/ios-arm64/libmodel.a"),
                           "libSystem.tbd"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = macho_info((tmp_path / "app").read_bytes(), "app")
    assert info["machine"] == "arm64" and "_pthread_create" in info["undefined"], info["undefined"]

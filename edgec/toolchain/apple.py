"""iOS slices without Xcode: clang compiles the runtime freestanding for the slice's triple,
`llvm-ar --format=darwin` writes the static library (Apple's linker wants the BSD `__.SYMDEF`
table, which GNU ar does not write) and `llvm-lipo` merges the two simulator architectures.
Nothing here links an executable: iOS code runs only on a phone or in the simulator."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgec.errors import ToolchainError
from edgec.targets import TargetProfile
from edgec.toolchain.cc import run_tool
from edgec.toolchain.lld import find_versioned

# clang spellings of the runtime flags in cc.C_FLAGS. -ffreestanding implies -fno-builtin, so the
# copy loops are never turned into memcpy calls; no -fPIC: Mach-O arm64/x86_64 code is always PIC.
CLANG_FLAGS = ("-std=gnu99", "-O2", "-fno-common", "-Wall", "-Wextra",
               "-Werror=implicit-function-declaration")


@dataclass(frozen=True)
class AppleToolchain:
    profile: TargetProfile
    cc: str
    ar: str

    def _run(self, cmd: list[str], cwd: Path, what: str) -> None:
        run_tool(cmd, cwd, what)

    def compile_c(self, sources: list[str], cwd: Path, include_dirs: list[str],
                  extra: tuple[str, ...] = ()) -> list[str]:
        objs = []
        for src in sources:
            obj = str(Path(src).with_suffix(".o"))
            self._run([self.cc, *CLANG_FLAGS, *self.profile.cc_flags, *extra,
                       *[f"-I{d}" for d in include_dirs], "-c", src, "-o", obj],
                      cwd, f"compiling {src} for {self.profile.name}")
            objs.append(obj)
        return objs

    def archive(self, out: str, objects: list[str], cwd: Path) -> None:
        (cwd / out).unlink(missing_ok=True)
        self._run([self.ar, "--format=darwin", "rcsD", out, *objects], cwd, f"archiving {out}")

    def link_shared(self, out: str, inputs: list[str], cwd: Path) -> None:
        raise ToolchainError(f"{self.profile.name}: iOS bundles hold static libraries only "
                             "(apps link them with Xcode)")

    def link_executable(self, out: str, inputs: list[str], cwd: Path, include_dirs: list[str],
                        static: bool = True) -> None:
        raise ToolchainError(f"{self.profile.name} bundles cannot run on this machine: they need an "
                             "iOS device or simulator (link the .xcframework with Xcode)")


def lipo_create(out: Path, inputs: list[Path]) -> None:
    """One universal (fat) static library from per-architecture ones (both simulator slices
    must share one xcframework library: same platform and variant)."""
    lipo = find_versioned("llvm-lipo", "llvm")
    proc = subprocess.run([lipo, "-create", *map(str, inputs), "-output", str(out)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"llvm-lipo failed:\n{proc.stderr.strip()[:2000]}")


def find_apple_toolchain(profile: TargetProfile) -> AppleToolchain:
    cc = os.environ.get("EDGEC_CC_CLANG") or profile.cc
    path = shutil.which(cc)
    if path is None:
        raise ToolchainError(f"C compiler {cc!r} for device {profile.name!r} not found; install it "
                             f"with `apt-get install {profile.cc_package}` (or set EDGEC_CC_CLANG)")
    return AppleToolchain(profile, path, find_versioned("llvm-ar", "llvm"))

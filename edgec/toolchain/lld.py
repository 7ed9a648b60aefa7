"""ld.lld for freestanding ELF links: Android `lib<name>.so` files (no NDK, no libc) and the
small static/dynamic test drivers that run them under qemu-user."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from edgec.errors import ToolchainError
from edgec.targets import TargetProfile
from edgec.toolchain.cc import Toolchain, run_tool


def find_versioned(tool: str, package: str) -> str:
    """`tool` or the newest `tool-NN` on PATH (Debian installs some LLVM tools only versioned)."""
    path = shutil.which(tool)
    if path:
        return path
    for version in range(30, 10, -1):
        path = shutil.which(f"{tool}-{version}")
        if path:
            return path
    raise ToolchainError(f"{tool} not found; install it with `apt-get install {package}`")


def find_lld() -> str:
    return find_versioned("ld.lld", "lld")


def builtins_library(tc: Toolchain) -> str:
    """The compiler's libgcc.a (integer division, 64-bit helpers on armv7, half conversions).
    Linked statically and hidden, as the NDK does with its builtins."""
    proc = subprocess.run([tc.cc, *tc.profile.cc_flags, "-print-libgcc-file-name"],
                          capture_output=True, text=True)
    lib = proc.stdout.strip()
    if proc.returncode != 0 or not lib or not Path(lib).is_file():
        raise ToolchainError(f"{tc.cc} did not report its libgcc.a (-print-libgcc-file-name)")
    return lib


# Android: SONAME is required since API 23; RELRO + BIND_NOW as the NDK defaults; 16 KiB pages
# (Android 15 devices) also load on 4 KiB kernels; both hash styles for every API level.
ANDROID_SHARED_FLAGS = ("--build-id=none", "--hash-style=both", "-z", "relro", "-z", "now",
                        "-z", "noexecstack", "-z", "max-page-size=16384", "--gc-sections",
                        "--no-undefined", "--exclude-libs", "ALL")


def link_shared(profile: TargetProfile, out: str, inputs: list[str], builtins: str, cwd: Path) -> None:
    """Link a freestanding shared library. `--no-undefined`: anything the generated code or
    runtime would need from libc/libm fails here, not on the phone."""
    run_tool([find_lld(), "-shared", "-soname", Path(out).name, *ANDROID_SHARED_FLAGS, "-o", out,
          *inputs, builtins], cwd, f"linking {out} for {profile.name}")


def link_static_exe(profile: TargetProfile, out: str, inputs: list[str], builtins: str, cwd: Path) -> None:
    """A static executable without libc (entry `_start`), for the freestanding test driver."""
    run_tool([find_lld(), "-static", "-e", "_start", "--build-id=none", "--no-undefined", "--gc-sections",
          "-o", out, *inputs, builtins], cwd, f"linking {out} for {profile.name}")


def link_dynamic_exe(profile: TargetProfile, out: str, inputs: list[str], interpreter: str,
                     cwd: Path) -> None:
    """An executable that loads the shared libraries among `inputs` through `interpreter`
    (glibc's ld.so under qemu-user), found next to the executable ($ORIGIN)."""
    run_tool([find_lld(), "-e", "_start", "--build-id=none", "-dynamic-linker", interpreter,
          "-rpath", "$ORIGIN", "--no-undefined", "-o", out, *inputs], cwd,
         f"linking {out} for {profile.name}")

"""C toolchain per device profile: host `cc`, `aarch64-linux-gnu-gcc`, `arm-linux-gnueabihf-gcc`.
A missing tool is a clear error naming the Debian package to install."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgec.errors import ToolchainError
from edgec.targets import TargetProfile

# Flags for the runtime and glue: C99 with GNU extensions (gnu99 also turns trigraphs off; model
# names reach the glue only as fully escaped literals anyway), position independent, no
# loop->memcpy rewrites so the runtime needs no libc, and no paths or timestamps that would break
# reproducible builds.
C_FLAGS = ("-std=gnu99", "-O2", "-fPIC", "-ffunction-sections", "-fdata-sections",
           "-fno-tree-loop-distribute-patterns", "-Wall", "-Wextra", "-Werror=implicit-function-declaration")


def run_tool(cmd: list[str], cwd: Path, what: str) -> None:
    """Run a compiler/archiver/linker with a fixed locale and no timestamps (reproducible
    outputs); a failure is a ToolchainError carrying the tool's own message."""
    env = dict(os.environ, SOURCE_DATE_EPOCH="0", ZERO_AR_DATE="1", LC_ALL="C")
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise ToolchainError(f"{what} failed ({' '.join(cmd[:3])} ...):\n{proc.stderr.strip()[:2000]}")


@dataclass(frozen=True)
class Toolchain:
    profile: TargetProfile
    cc: str
    ar: str

    def _run(self, cmd: list[str], cwd: Path, what: str) -> None:
        run_tool(cmd, cwd, what)

    def compile_c(self, sources: list[str], cwd: Path, include_dirs: list[str], extra: tuple[str, ...] = ()) -> list[str]:
        """Compile each source (relative to cwd) to an object next to it; returns object names."""
        objs = []
        for src in sources:
            obj = str(Path(src).with_suffix(".o"))
            cmd = [self.cc, *C_FLAGS, *self.profile.cc_flags, *extra,
                   *[f"-I{d}" for d in include_dirs], "-c", src, "-o", obj]
            self._run(cmd, cwd, f"compiling {src} for {self.profile.name}")
            objs.append(obj)
        return objs

    def archive(self, out: str, objects: list[str], cwd: Path) -> None:
        (cwd / out).unlink(missing_ok=True)
        self._run([self.ar, "rcsD", out, *objects], cwd, f"archiving {out}")

    def link_shared(self, out: str, inputs: list[str], cwd: Path) -> None:
        self._run([self.cc, "-shared", *self.profile.cc_flags, "-o", out, *inputs,
                   "-Wl,--build-id=none"], cwd, f"linking {out}")

    def merge_objects(self, objects: list[bytes]) -> bytes:
        """One relocatable object from several (`ld -r`), in their order: the per-kernel objects
        become the bundle's one kernels object (edgec/codegen/objects.py)."""
        with tempfile.TemporaryDirectory(prefix="edgec-merge-") as tmp:
            names = []
            for i, obj in enumerate(objects):
                names.append(f"{i}.o")
                (Path(tmp) / names[-1]).write_bytes(obj)
            self._run([self.cc, *self.profile.cc_flags, "-r", "-nostdlib", "-Wl,--build-id=none",
                       "-o", "merged.o", *names], Path(tmp), f"merging kernel objects for {self.profile.name}")
            return (Path(tmp) / "merged.o").read_bytes()

    def link_executable(self, out: str, inputs: list[str], cwd: Path, include_dirs: list[str],
                        static: bool = True) -> None:
        cmd = [self.cc, *self.profile.cc_flags, "-std=gnu99", "-O2", *[f"-I{d}" for d in include_dirs],
               "-o", out, *inputs, "-pthread"]  # harmless without threads; needed with a pool
        if static:
            cmd.append("-static")
        self._run(cmd, cwd, f"linking {out}")


def find_gnu_toolchain(profile: TargetProfile) -> Toolchain:
    """The gcc-style toolchain of an ELF profile (edgec.toolchain.find_toolchain picks)."""
    cc = os.environ.get(f"EDGEC_CC_{profile.arch.upper()}") or profile.cc
    path = shutil.which(cc)
    if path is None:
        raise ToolchainError(f"C compiler {cc!r} for device {profile.name!r} not found; install it "
                             f"with `apt-get install {profile.cc_package}` (or set EDGEC_CC_{profile.arch.upper()})")
    prefix = cc[: -len("gcc")] if cc.endswith("gcc") else ""
    ar = shutil.which(f"{prefix}ar") or shutil.which("ar")
    if ar is None:
        raise ToolchainError("archiver `ar` not found; install it with `apt-get install binutils`")
    return Toolchain(profile, path, ar)


def run_binary(profile: TargetProfile, argv: list[str], cwd: Path | None = None,
               timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a binary built for `profile` on this machine (natively or through qemu-user)."""
    wrapper = list(profile.exec_wrapper)
    if wrapper and shutil.which(wrapper[0]) is None:
        raise ToolchainError(f"{wrapper[0]} not found; install it with `apt-get install qemu-user`")
    return subprocess.run(wrapper + argv, cwd=cwd, capture_output=True, timeout=timeout)

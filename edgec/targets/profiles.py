"""One profile per device kind: LLVM triple, CPU, features, ABI, toolchain and how to run
binaries built for it here (an exec wrapper such as qemu-aarch64 for ARM)."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field, replace

from edgec.errors import DeviceError


@dataclass(frozen=True)
class TargetProfile:
    name: str
    description: str
    triple: str
    cpu: str
    features: str
    arch: str  # x86_64 | aarch64 | armv7
    float_abi: str = "hard"  # hard | softfp | n/a
    object_format: str = "elf"
    pointer_bits: int = 64
    cc: str = "cc"  # C compiler (also the linker driver)
    cc_flags: tuple[str, ...] = ()
    cc_package: str = "gcc"  # Debian package that provides cc
    exec_wrapper: tuple[str, ...] = ()  # how this machine runs the target's binaries
    qemu_cpu: str = ""
    default_threads: int = 1
    l1d_kb: int = 32
    l2_kb: int = 512
    vector_bits: int = 128
    aliases: tuple[str, ...] = field(default=())

    def summary(self) -> dict:
        return {"name": self.name, "triple": self.triple, "cpu": self.cpu, "features": self.features,
                "arch": self.arch, "float_abi": self.float_abi, "object_format": self.object_format}


_AARCH64 = dict(arch="aarch64", cc="aarch64-linux-gnu-gcc", cc_package="gcc-aarch64-linux-gnu",
                exec_wrapper=("qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"))
_ARMV7 = dict(arch="armv7", pointer_bits=32, cc="arm-linux-gnueabihf-gcc",
              cc_package="gcc-arm-linux-gnueabihf",
              cc_flags=("-mfpu=neon-vfpv4", "-mfloat-abi=hard"),
              exec_wrapper=("qemu-arm", "-L", "/usr/arm-linux-gnueabihf"))

PROFILES: dict[str, TargetProfile] = {p.name: p for p in [
    TargetProfile("rpi3", "Raspberry Pi 3 (Cortex-A53, 32-bit OS, NEON, hard float)",
                  "armv7a-unknown-linux-gnueabihf", "cortex-a53", "+neon,+vfp4,+thumb2",
                  l2_kb=512, default_threads=4, **_ARMV7),
    TargetProfile("rpi4", "Raspberry Pi 4 (Cortex-A72, 64-bit OS, NEON)",
                  "aarch64-unknown-linux-gnu", "cortex-a72", "+neon,+fp-armv8,+crc",
                  l2_kb=1024, default_threads=4, aliases=("pi4",), **_AARCH64),
    TargetProfile("rpi5", "Raspberry Pi 5 (Cortex-A76, NEON, dotprod, fp16)",
                  "aarch64-unknown-linux-gnu", "cortex-a76", "+neon,+fp-armv8,+dotprod,+fullfp16",
                  l2_kb=512, default_threads=4, aliases=("pi5",), **_AARCH64),
    TargetProfile("aarch64", "generic 64-bit ARM Linux (Cortex-A53 baseline)",
                  "aarch64-unknown-linux-gnu", "cortex-a53", "+neon,+fp-armv8", **_AARCH64),
    TargetProfile("armv7", "generic 32-bit ARM Linux, NEON, hard float",
                  "armv7a-unknown-linux-gnueabihf", "cortex-a53", "+neon,+vfp4,+thumb2", **_ARMV7),
    TargetProfile("x86_64", "x86-64 Linux with AVX2 + FMA (Haswell and newer)",
                  "x86_64-unknown-linux-gnu", "haswell", "", arch="x86_64", vector_bits=256),
    TargetProfile("x86_64-avx512", "x86-64 Linux with AVX-512 and VNNI (Ice Lake, Zen 4)",
                  "x86_64-unknown-linux-gnu", "icelake-server", "", arch="x86_64", vector_bits=512),
]}


def host_profile() -> TargetProfile:
    """This machine: the CPU and features LLVM detects, run natively."""
    import llvmlite.binding as llvm

    from edgec.codegen.llvm_init import init_llvm

    init_llvm()
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64", "aarch64", "arm64"):
        raise DeviceError(f"host architecture {machine!r} is not supported as a build target")
    arch = "x86_64" if machine in ("x86_64", "amd64") else "aarch64"
    features = llvm.get_host_cpu_features().flatten()
    bits = 512 if "+avx512f" in features.split(",") else 256 if "+avx2" in features.split(",") else 128
    return TargetProfile("host", f"this machine ({llvm.get_host_cpu_name()})", llvm.get_process_triple(),
                         llvm.get_host_cpu_name(), features, arch=arch, vector_bits=bits,
                         cc="cc", cc_package="gcc")


def get_profile(name: str) -> TargetProfile:
    if name == "host":
        return host_profile()
    for p in PROFILES.values():
        if name == p.name or name in p.aliases:
            return p
    known = ", ".join(["host", *PROFILES])
    raise DeviceError(f"unknown device {name!r}; known device profiles: {known} (see `edgec devices list`)")


def with_threads(p: TargetProfile, threads: int) -> TargetProfile:
    return replace(p, default_threads=threads)

"""One profile per device kind: LLVM triple, CPU, features, ABI, toolchain and how to run
binaries built for it here (an exec wrapper such as qemu-aarch64 for ARM)."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field, replace
from typing import NamedTuple

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
    # Phones (edgec/packager/mobile.py): platform "android" | "ios" ("linux" for the others),
    # the Android ABI or iOS slice directory name, and the minimum API level / OS version.
    platform: str = "linux"
    abi: str = ""
    min_os: str = ""
    # ---- capabilities: derived once from arch / cpu / features / vector_bits (below) ----------
    fp32_lanes: int = field(init=False)  # fp32 lanes of the widest vector register
    vector_registers: int = field(init=False)
    int8_dot: str | None = field(init=False)  # "u8s8" (x86 vpmaddubsw), "s8s8" (ARM sdot), None
    fp16_arith: bool = field(init=False)  # native fp16 arithmetic (ARMv8.2 fullfp16)
    f16c: bool = field(init=False)  # a hardware half -> float conversion (fp16 weights)
    code_bytes: CodeBytes = field(init=False)  # machine-code size model of generated kernels

    def __post_init__(self) -> None:
        feats = set(self.features.split(","))
        derived = {
            "fp32_lanes": max(4, self.vector_bits // 32),
            "vector_registers": 32 if self.arch == "aarch64" or self.vector_bits >= 512 else 16,
            # x86: vpmaddubsw on 256-bit vectors (every AVX2 profile; the 512-bit kernels use
            # the int16-pair path); aarch64: sdot with dotprod.
            # x86 with VNNI (AVX512-VNNI + VL, or AVX-VNNI): vpdpbusd on the same byte quads,
            # exact for full-range weights (Zen 4: one 256-bit uop for 32 MACs, twice the
            # 512-bit vpmaddwd pair path per uop).
            "int8_dot": "vnni" if self.arch == "x86_64" and (
                {"+avx512vnni", "+avx512vl"} <= feats or "+avxvnni" in feats) else
                        "u8s8" if self.arch == "x86_64" and self.vector_bits == 256 else
                        "s8s8" if self.arch == "aarch64" and "+dotprod" in feats else None,
            "fp16_arith": "+fullfp16" in feats,
            # aarch64: fcvtl; armv7 NEON: vcvt.f32.f16 (vfpv4/neon-fp16); x86: F16C.
            "f16c": self.arch != "x86_64" or "+f16c" in feats or (
                self.cpu.startswith(_F16C_X86) and "-f16c" not in feats),
            "code_bytes": CODE_BYTES.get(self.arch, CODE_BYTES["armv7"]),
        }
        for k, v in derived.items():
            object.__setattr__(self, k, v)

    def float_types(self) -> tuple[str, ...]:
        """The float dtypes (numpy names) the float kernels compute in on this target: float32,
        and float16 where it has fp16 arithmetic (`--precision fp16`)."""
        return ("float32", "float16") if self.fp16_arith else ("float32",)

    def lanes(self, itemsize: int) -> int:
        """Lanes of the widest vector register for elements of `itemsize` bytes (at least 16 bytes)."""
        return max(16, self.vector_bits // 8) // itemsize

    def summary(self) -> dict:
        out = {"name": self.name, "triple": self.triple, "cpu": self.cpu, "features": self.features,
               "arch": self.arch, "float_abi": self.float_abi, "object_format": self.object_format}
        if self.platform != "linux":  # keeps host/rpi manifests byte-identical
            out |= {"platform": self.platform, "abi": self.abi, "min_os": self.min_os}
        return out


class CodeBytes(NamedTuple):
    """Bytes of machine code per emitted element of an unrolled sparse kernel (the cost rule's
    code-size model, edgec/sparsity/cost.py). armv7 keeps constants in literal pools inside
    .text and spills some registers."""

    per_block: int  # per non-zero weight block
    per_broadcast: int
    per_vector: int  # per output vector


CODE_BYTES = {"x86_64": CodeBytes(9, 10, 20), "aarch64": CodeBytes(12, 8, 16), "armv7": CodeBytes(40, 12, 32)}
# x86-64 CPUs LLVM knows that have F16C (vcvtph2ps) when their feature string does not say.
_F16C_X86 = ("haswell", "broadwell", "skylake", "cascadelake", "cooperlake", "cannonlake", "icelake",
             "tigerlake", "rocketlake", "alderlake", "raptorlake", "meteorlake", "sapphirerapids",
             "emeraldrapids", "graniterapids", "znver", "bdver", "ivybridge", "arrowlake", "lunarlake")

_AARCH64 = dict(arch="aarch64", cc="aarch64-linux-gnu-gcc", cc_package="gcc-aarch64-linux-gnu",
                exec_wrapper=("qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"))
_ARMV7 = dict(arch="armv7", pointer_bits=32, cc="arm-linux-gnueabihf-gcc",
              cc_package="gcc-arm-linux-gnueabihf",
              cc_flags=("-mfpu=neon-vfpv4", "-mfloat-abi=hard"),
              exec_wrapper=("qemu-arm", "-L", "/usr/arm-linux-gnueabihf"))

# Android: the runtime, glue and JNI bridge are compiled freestanding by the Linux cross gcc and
# linked into lib<name>.so by ld.lld (no NDK, no libc). -ffixed-x18: Android reserves x18 (shadow
# call stack). armeabi-v7a uses softfp (float args in core registers), so it is compiled by the
# soft-float EABI gcc, whose libgcc has the same calling convention.
_NOSTD = ("-ffreestanding", "-fno-stack-protector")
_ANDROID = dict(platform="android", min_os="24", default_threads=1)
_ANDROID_ARM64 = dict(arch="aarch64", cc="aarch64-linux-gnu-gcc", cc_package="gcc-aarch64-linux-gnu",
                      cc_flags=(*_NOSTD, "-ffixed-x18"), abi="arm64-v8a",
                      exec_wrapper=("qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"), **_ANDROID)
# iOS: Mach-O objects from LLVM, runtime compiled by clang for the same triple (toolchain/apple.py).
_IOS = dict(object_format="macho", platform="ios", min_os="14.0", cc="clang", cc_package="clang")


def _ios_flags(triple: str) -> tuple[str, ...]:
    return ("-target", triple, *_NOSTD)


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
                  "x86_64-unknown-linux-gnu", "icelake-server", "+avx512vnni,+avx512vl,+avx512bw", arch="x86_64",
                  vector_bits=512),
    TargetProfile("android-arm64", "Android arm64-v8a phones, API 24+ (Cortex-A53 baseline, NEON)",
                  "aarch64-linux-android24", "cortex-a53", "+neon,+fp-armv8", **_ANDROID_ARM64),
    TargetProfile("android-arm64-dotprod", "Android arm64-v8a, modern phones (ARMv8.2: dotprod, fp16)",
                  "aarch64-linux-android24", "cortex-a76", "+neon,+fp-armv8,+dotprod,+fullfp16",
                  **_ANDROID_ARM64),
    TargetProfile("android-armv7", "Android armeabi-v7a, API 24+ (NEON, softfp ABI)",
                  "armv7a-linux-androideabi24", "generic", "+neon,+vfp3,+thumb2", arch="armv7",
                  float_abi="softfp", pointer_bits=32, cc="arm-linux-gnueabi-gcc",
                  cc_package="gcc-arm-linux-gnueabi", abi="armeabi-v7a",
                  cc_flags=("-march=armv7-a", "-mfpu=neon", "-mfloat-abi=softfp", "-mthumb", *_NOSTD),
                  exec_wrapper=("qemu-arm", "-L", "/usr/arm-linux-gnueabi"), **_ANDROID),
    TargetProfile("android-x86_64", "Android x86_64 (emulator; SSE4.2 + POPCNT baseline)",
                  "x86_64-linux-android24", "x86-64", "+ssse3,+sse4.1,+sse4.2,+popcnt", arch="x86_64",
                  cc_flags=_NOSTD, abi="x86_64", **_ANDROID),
    TargetProfile("ios-arm64", "iPhone / iPad, iOS 14+ (arm64)", "arm64-apple-ios14.0", "apple-a9",
                  "+neon,+fp-armv8", arch="aarch64", abi="ios-arm64",
                  cc_flags=_ios_flags("arm64-apple-ios14.0"), **_IOS),
    TargetProfile("ios-arm64-simulator", "iOS 14+ simulator on Apple-silicon Macs",
                  "arm64-apple-ios14.0-simulator", "apple-m1", "+neon,+fp-armv8", arch="aarch64",
                  abi="ios-arm64-simulator", cc_flags=_ios_flags("arm64-apple-ios14.0-simulator"), **_IOS),
    TargetProfile("ios-x86_64-simulator", "iOS 14+ simulator on Intel Macs",
                  "x86_64-apple-ios14.0-simulator", "penryn", "", arch="x86_64",
                  abi="ios-x86_64-simulator", cc_flags=_ios_flags("x86_64-apple-ios14.0-simulator"), **_IOS),
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
    # AMD's SSE4a extrq/insertq are microcoded on Zen and LLVM likes them for merging partial
    # vector stores (a 7-wide int8 depthwise row pair ran 7x slower): never emit them.
    features = ",".join(f for f in llvm.get_host_cpu_features().flatten().split(",") if f != "+sse4a")
    features = f"{features},-sse4a" if arch == "x86_64" else features
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
    raise DeviceError(f"unknown device {name[:60]!r}{'...' if len(name) > 60 else ''}; known device profiles: {known} (see `edgec devices list`)")


def with_threads(p: TargetProfile, threads: int) -> TargetProfile:
    return replace(p, default_threads=threads)

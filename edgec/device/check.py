"""`edgec devices check`: what a device is (uname, CPU, cores, CPU features) and whether it
can run bundles built for its profile (architecture, required features, exec wrapper)."""

from __future__ import annotations

import shlex
import time
from pathlib import PurePosixPath

from edgec.device.ssh import Device
from edgec.targets import TargetProfile

_SEP = "@@edgec@@"
_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64",
         "armv7l": "armv7", "armv8l": "armv7", "armhf": "armv7"}
_WRAPPER_ARCH = {"qemu-aarch64": "aarch64", "qemu-aarch64-static": "aarch64", "qemu-arm": "armv7",
                 "qemu-arm-static": "armv7", "qemu-x86_64": "x86_64", "qemu-x86_64-static": "x86_64"}
# LLVM feature name -> /proc/cpuinfo flag, per the kernel's naming. Only features a kernel would
# use are listed; others in a profile are not checked.
_X86 = {"sse3": "pni", "ssse3": "ssse3", "sse4.1": "sse4_1", "sse4.2": "sse4_2", "avx": "avx",
        "avx2": "avx2", "fma": "fma", "f16c": "f16c", "bmi": "bmi1", "bmi2": "bmi2",
        "avx512f": "avx512f", "avx512bw": "avx512bw", "avx512cd": "avx512cd", "avx512dq": "avx512dq",
        "avx512vl": "avx512vl", "avx512vnni": "avx512_vnni", "avx512bf16": "avx512_bf16",
        "avx512fp16": "avx512_fp16", "avx512vbmi": "avx512vbmi", "avx512ifma": "avx512ifma",
        "avxvnni": "avx_vnni"}
_ARM64 = {"neon": "asimd", "fp-armv8": "fp", "crc": "crc32", "dotprod": "asimddp",
          "fullfp16": "asimdhp", "i8mm": "i8mm", "aes": "aes", "sha2": "sha2", "lse": "atomics",
          "bf16": "bf16", "sve": "sve"}
_ARM32 = {"neon": "neon", "vfp4": "vfpv4", "vfp3": "vfpv3"}
_ARM32_ON_64 = {"neon": "asimd", "vfp4": "fp", "vfp3": "fp"}  # 32-bit userland on a 64-bit kernel
# Profiles that name an x86 CPU rather than list features: what that CPU implies.
_X86_CPU = {"haswell": ("avx2", "fma", "f16c", "bmi2"),
            "icelake-server": ("avx2", "fma", "f16c", "bmi2", "avx512f", "avx512bw", "avx512dq",
                               "avx512vl", "avx512vnni")}
_ARM_PARTS = {"0xd03": "cortex-a53", "0xd04": "cortex-a35", "0xd05": "cortex-a55", "0xd07": "cortex-a57",
              "0xd08": "cortex-a72", "0xd09": "cortex-a73", "0xd0a": "cortex-a75", "0xd0b": "cortex-a76",
              "0xd0d": "cortex-a77", "0xd41": "cortex-a78", "0xd44": "cortex-x1", "0xd46": "cortex-a510",
              "0xd47": "cortex-a710", "0xd4b": "cortex-a78c", "0xd0c": "neoverse-n1", "0xd40": "neoverse-v1"}


def required_features(profile: TargetProfile, device_arch: str) -> dict[str, str]:
    """{llvm feature: cpuinfo flag} the profile's code needs, for a device of `device_arch`."""
    table = {"x86_64": _X86, "aarch64": _ARM64}.get(profile.arch, _ARM32)
    if profile.arch == "armv7" and device_arch == "aarch64":
        table = _ARM32_ON_64
    feats = [f[1:] for f in profile.features.split(",") if f.startswith("+")]
    if profile.arch == "x86_64":
        feats += _X86_CPU.get(profile.cpu, ())
    return {f: table[f] for f in sorted(set(feats)) if f in table}


def parse_cpuinfo(text: str) -> tuple[str, list[str]]:
    """(CPU description, feature flags) from /proc/cpuinfo of x86, arm64 or arm."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    flags = (fields.get("flags") or fields.get("features") or "").split()
    cpu = fields.get("model name", "")
    part = fields.get("cpu part", "").lower()
    if part in _ARM_PARTS and (not cpu or cpu.startswith("ARMv")):
        cpu = f"{_ARM_PARTS[part]} ({cpu})" if cpu else _ARM_PARTS[part]
    board = fields.get("model", "")
    if board and not board.isdigit():  # Raspberry Pi kernels: "Model : Raspberry Pi 4 Model B"
        cpu = f"{cpu}, {board}" if cpu else board
    return cpu or fields.get("hardware", "unknown"), sorted(set(flags))


def check_device(dev: Device) -> dict:
    """Connect, inspect and judge the device against its profile. Returns a JSON-able report
    whose `fits` is False when the profile's binaries cannot run there."""
    entry, profile = dev.entry, dev.entry.target
    dev.connect()
    t0 = time.monotonic()
    dev.run("true", timeout=30)
    latency_ms = (time.monotonic() - t0) * 1e3
    wrapper = entry.wrapper_argv
    w = shlex.quote(wrapper[0]) if wrapper else ""
    script = (f"uname -srm; echo {_SEP}; (getconf _NPROCESSORS_ONLN || nproc) 2>/dev/null; echo {_SEP}; "
              f"cat /proc/cpuinfo 2>/dev/null; echo {_SEP}; "
              + (f"command -v {w} && {w} --version 2>&1 | head -n 1" if w else "true"))
    parts = dev.run(script, timeout=60).text.split(_SEP + "\n")
    parts += [""] * (4 - len(parts))
    uname, cores_s, cpuinfo, wrapper_out = (p.strip() for p in parts[:4])
    machine = uname.split()[-1] if uname else "unknown"
    arch = _ARCH.get(machine, machine)
    cpu, flags = parse_cpuinfo(cpuinfo)
    problems: list[str] = []
    notes: list[str] = []
    report = {"device": entry.name, "address": entry.address, "profile": profile.name,
              "host_key": f"{dev.host_key.get_name()} {dev.host_key.fingerprint}" if dev.host_key else None,
              "latency_ms": round(latency_ms, 2), "uname": uname, "arch": arch, "cpu": cpu,
              "cores": int(cores_s) if cores_s.isdigit() else None, "features": flags,
              "exec_wrapper": entry.exec_wrapper or None}
    if wrapper:
        found = wrapper_out.splitlines()
        runs_as = _WRAPPER_ARCH.get(PurePosixPath(wrapper[0]).name)
        report["wrapper"] = {"path": found[0] if found else None, "version": found[1] if len(found) > 1 else None}
        if not found:
            problems.append(f"exec wrapper {wrapper[0]!r} not found on the device (apt-get install qemu-user)")
        if runs_as is None:
            notes.append(f"cannot tell which architecture {wrapper[0]!r} runs; assuming {profile.arch}")
        elif runs_as != profile.arch:
            problems.append(f"exec wrapper {wrapper[0]} runs {runs_as} binaries, profile {profile.name} is {profile.arch}")
        notes.append(f"binaries run emulated through {wrapper[0]}: CPU features are the emulator's, not checked")
        report |= {"runs_binaries_as": runs_as or profile.arch, "required_features": [], "missing_features": []}
    else:
        native_ok = arch == profile.arch or (profile.arch == "armv7" and arch == "aarch64")
        if not native_ok:
            problems.append(f"device is {arch} ({machine}) but profile {profile.name} builds {profile.arch} "
                            f"code; pick a matching --profile, or an --exec-wrapper such as "
                            f"qemu-{'arm' if profile.arch == 'armv7' else profile.arch}")
        if profile.arch == "armv7" and arch == "aarch64":
            notes.append("32-bit code on a 64-bit kernel: needs AArch32 support (COMPAT) on the device")
        need = required_features(profile, arch) if native_ok else {}
        missing = [f"{k} ({v})" for k, v in need.items() if v not in flags]
        if missing and flags:
            problems.append(f"CPU lacks features profile {profile.name} uses: {', '.join(missing)}")
        elif need and not flags:
            notes.append("no feature flags in /proc/cpuinfo: features not checked")
        report |= {"runs_binaries_as": arch, "required_features": sorted(need.values()),
                   "missing_features": missing if flags else []}
        part_cpu = cpu.split(" ")[0]
        if profile.arch != "x86_64" and part_cpu.startswith("cortex") and part_cpu != profile.cpu:
            notes.append(f"profile {profile.name} is tuned for {profile.cpu}, the device has {part_cpu}")
    cores = report["cores"]
    if cores is not None and cores < profile.default_threads:
        notes.append(f"{cores} core(s) but profile {profile.name} defaults to {profile.default_threads} threads")
    report |= {"fits": not problems, "problems": problems, "notes": notes}
    return report

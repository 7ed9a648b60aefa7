"""iOS slices of a phone bundle (mobile.py writes the shared part):

  lib/<device>/lib<name>.a           runtime + model for one slice (darwin-format archive)
  ios/Edgec<Name>.xcframework/       Info.plist + one library per platform variant:
      ios-arm64/                         device
      ios-arm64_x86_64-simulator/        simulator (both architectures in one universal
                                         archive: an xcframework allows one library per variant)
        lib<name>.a, Headers/<name>.h, Headers/edgec_runtime.h, Headers/module.modulemap
  ios/Swift/<Name>.swift             wrapper class: load() / run([Float] | [Data]) / close()
  ios/README.md

The LLVM objects carry LC_BUILD_VERSION (platform IOS or IOS_SIMULATOR, minos 14.0) from the
triple, and clang writes the same into the runtime objects, so Xcode links the simulator slice
(objects built for the device platform are rejected by the simulator link)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from edgec.errors import ModelError, ToolchainError
from edgec.packager import swift_templates as st
from edgec.packager.cglue import TensorSpec
from edgec.packager.macho import macho_info
from edgec.targets import TargetProfile
from edgec.toolchain import find_toolchain
from edgec.toolchain.apple import lipo_create

# compiler-rt builtins Xcode links into every app (libclang_rt.ios / .iossim): the only external
# symbols generated code may need. libc/libm calls (memcpy, expf, ...) are never allowed.
COMPILER_RT = frozenset({"___extendhfsf2", "___truncsfhf2", "___truncdfhf2", "___divti3", "___udivti3",
                         "___modti3", "___umodti3", "___floattisf", "___floattidf", "___fixsfti",
                         "___fixdfti", "___fixunssfti", "___fixunsdfti"})
PLATFORM_OF = {"": "ios", "simulator": "ios-simulator"}
ARCH_NAME = {"aarch64": "arm64", "x86_64": "x86_64"}


def _variant(p: TargetProfile) -> str:
    return "simulator" if p.triple.endswith("-simulator") else ""


def check_slice(profile: TargetProfile, objects: dict[str, bytes]) -> None:
    """Platform, minimum OS and CPU of every object; no external symbol beyond compiler-rt."""
    defined: set[str] = set()
    undefined: set[str] = set()
    infos = {}
    for name, data in objects.items():
        info = infos[name] = macho_info(data, name)
        defined |= set(info["exported"]) | set(info["hidden"])
        undefined |= set(info["undefined"])
    for name, info in infos.items():
        want = (ARCH_NAME[profile.arch], PLATFORM_OF[_variant(profile)], profile.min_os)
        got = (info["machine"], info["platform"], info["min_os"])
        if got != want:
            raise ToolchainError(f"{profile.name}: {name} is built for {got}, expected {want}")
    missing = sorted(undefined - defined - COMPILER_RT)
    if missing:
        raise ModelError(
            f"{profile.name}: the generated code needs {', '.join(s[1:] for s in missing)}, which the "
            "bundle cannot provide (no libc/libm in the static library): an op in this model needs a "
            "library function or CPU feature this target lacks")


def _identifier(profiles: list[TargetProfile]) -> str:
    archs = "_".join(sorted(ARCH_NAME[p.arch] for p in profiles))
    variant = _variant(profiles[0])
    return f"ios-{archs}" + (f"-{variant}" if variant else "")


def build_ios(bundle: Path, prefix: str, version: str, profiles: list[TargetProfile],
              inputs: list[TensorSpec], outputs: list[TensorSpec], arena_bytes: int) -> list[dict]:
    entries = []
    for p in profiles:
        tc = find_toolchain(p)
        work = Path(tempfile.mkdtemp(prefix="edgec-ios-"))
        try:
            for d in ("src", "include"):
                shutil.copytree(bundle / d, work / d)
            shutil.copytree(bundle / "obj" / p.abi, work / "obj")
            c_objs = tc.compile_c([f"src/{prefix}_model.c", "src/edgec_runtime.c"], work, ["include"])
            objs = [*c_objs, f"obj/{prefix}_kernels.o", f"obj/{prefix}_weights.o"]
            check_slice(p, {o: (work / o).read_bytes() for o in objs})
            tc.archive(f"lib{prefix}.a", objs, work)
            (bundle / "lib" / p.abi).mkdir(parents=True)
            shutil.copyfile(work / f"lib{prefix}.a", bundle / "lib" / p.abi / f"lib{prefix}.a")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        entries.append({"abi": p.abi, "device": p.name, "triple": p.triple, "arch": ARCH_NAME[p.arch],
                        "platform": PLATFORM_OF[_variant(p)], "min_os": p.min_os,
                        "static_library": f"lib/{p.abi}/lib{prefix}.a",
                        "objects": [f"obj/{p.abi}/{prefix}_kernels.o", f"obj/{p.abi}/{prefix}_weights.o"]})
    write_xcframework(bundle, prefix, version, profiles)
    swift = bundle / "ios" / "Swift"
    swift.mkdir(parents=True)
    (swift / f"{st.swift_class_name(prefix)}.swift").write_text(
        st.swift_source(prefix, version, arena_bytes, inputs, outputs))
    return entries


def write_xcframework(bundle: Path, prefix: str, version: str, profiles: list[TargetProfile]) -> Path:
    xcf = bundle / "ios" / f"{st.module_name(prefix)}.xcframework"
    groups: dict[str, list[TargetProfile]] = {}
    for p in profiles:
        groups.setdefault(_variant(p), []).append(p)
    libraries = []
    for variant, group in sorted(groups.items()):
        ident = _identifier(group)
        d = xcf / ident
        (d / "Headers").mkdir(parents=True)
        for h in (f"{prefix}.h", "edgec_runtime.h"):
            shutil.copyfile(bundle / "include" / h, d / "Headers" / h)
        (d / "Headers" / "module.modulemap").write_text(st.modulemap(prefix))
        libs = [bundle / "lib" / p.abi / f"lib{prefix}.a" for p in group]
        if len(libs) == 1:
            shutil.copyfile(libs[0], d / f"lib{prefix}.a")
        else:
            lipo_create(d / f"lib{prefix}.a", libs)
        libraries.append({"identifier": ident, "binary": f"lib{prefix}.a", "variant": variant,
                          "archs": sorted(ARCH_NAME[p.arch] for p in group)})
    (xcf / "Info.plist").write_bytes(st.info_plist(libraries))
    (bundle / "ios" / "README.md").write_text(st.readme(prefix, [lib["identifier"] for lib in libraries],
                                                        version))
    return xcf

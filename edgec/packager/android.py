"""Android slices of a phone bundle (mobile.py writes the shared part):

  lib/<abi>/lib<name>.a                 runtime + model, for native code linking the C API
  android/jniLibs/<abi>/lib<name>.so    the same plus the JNI bridge: drop-in for Gradle
  android/jni/<name>_jni.c, edgec_jni.h the bridge sources (android/CMakeLists.txt rebuilds the .so)
  android/java/edgec/models/<Name>.java load() / run(float[] | ByteBuffer) / close(), typed I/O info
  android/README.md                     Gradle and CMake snippets

The .so is linked freestanding by ld.lld: runtime, glue and bridge are compiled with the cross
gcc (-ffreestanding), the compiler's libgcc.a is linked in hidden (integer division and 64-bit
helpers on armv7), and nothing is left undefined, so it loads on any API level >= 24 with no
NDK at bundle build time and no libc dependency.

`--threads N` (N > 1) adds the pthread pool (src/edgec_threads.c, -DEDGEC_THREADS=1). Its few
libc functions (POOL_LIBC) come from bionic's libc.so, which has held pthreads since API 1: the
.so is linked against a stub libc.so made here (those symbols only, SONAME libc.so, as the NDK's
stubs), so it needs libc.so and nothing else. The pool is compiled with the cross gcc's glibc
headers: it only calls the functions and keeps pthread_mutex_t/cond_t/t in the caller's ctx,
and glibc's types are at least as large and as aligned as bionic's on every ABI (mutex 48/24/40
bytes vs 40/4/40 on arm64/armv7/x86_64, cond 48 vs 48/4/48, pthread_t a long on both),
CLOCK_MONOTONIC and struct timespec are the same."""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

from elftools.elf.elffile import ELFFile

from edgec.errors import ModelError, ToolchainError
from edgec.packager import java_templates
from edgec.packager import jni_templates as jt
from edgec.packager.cglue import TensorSpec
from edgec.targets import TargetProfile
from edgec.toolchain import find_toolchain
from edgec.toolchain.cc import Toolchain, run_tool
from edgec.toolchain.lld import builtins_library, find_lld, link_shared

EF_ARM_ABI_FLOAT_SOFT = 0x200
ELF_MACHINE = {"aarch64": "EM_AARCH64", "armv7": "EM_ARM", "x86_64": "EM_X86_64"}


# What the thread pool takes from bionic's libc.so (checked against edgec_threads.c by the tests).
POOL_LIBC = ("clock_gettime", "pthread_cond_broadcast", "pthread_cond_destroy", "pthread_cond_init",
             "pthread_cond_signal", "pthread_cond_wait", "pthread_create", "pthread_join",
             "pthread_mutex_destroy", "pthread_mutex_init", "pthread_mutex_lock", "pthread_mutex_unlock")
# aarch64 gcc turns __atomic_* into libgcc's outline-atomics helpers, which read the CPU's
# features through glibc's private __getauxval: inline LL/SC (ARMv8.0, every arm64 phone) instead.
# Once libc.so is linked, lld resolves libgcc's weak armv7 division-by-zero handler
# (__aeabi_ldiv0 -> raise(SIGFPE), _dvmd_lnx.o) too: bionic has raise, the .so may import it.
LIBC_IMPORTS = (*POOL_LIBC, "raise")
POOL_FLAGS = {"aarch64": ("-DEDGEC_THREADS=1", "-mno-outline-atomics")}


def write_glue(bundle: Path, prefix: str, version: str, abis: list[str], arena_bytes: int,
               inputs: list[TensorSpec], outputs: list[TensorSpec], threads: int = 1) -> None:
    """The ABI-independent files under android/."""
    a = bundle / "android"
    java_dir = a / "java" / Path(*jt.JAVA_PACKAGE.split("."))
    for d in (a / "jni", java_dir):
        d.mkdir(parents=True, exist_ok=True)
    (a / "jni" / "edgec_jni.h").write_text(jt.JNI_HEADER)
    (a / "jni" / f"{prefix}_jni.c").write_text(jt.bridge_source(prefix, version))
    (java_dir / f"{jt.java_class_name(prefix)}.java").write_text(
        java_templates.java_source(prefix, version, arena_bytes, inputs, outputs, threads))
    (a / "CMakeLists.txt").write_text(jt.android_cmakelists(prefix, abis, threads))
    (a / "README.md").write_text(jt.readme(prefix, abis, version))


def check_shared_library(profile: TargetProfile, so: bytes, threads: int = 1) -> None:
    """What the phone's loader and the app rely on: right machine, softfp flag on armeabi-v7a,
    nothing undefined (no libc, no NDK libraries; with threads only the pool's functions from
    libc.so), the JNI entry points exported."""
    elf = ELFFile(io.BytesIO(so))
    want = ELF_MACHINE[profile.arch]
    if elf["e_machine"] != want:
        raise ToolchainError(f"{profile.name}: lib is {elf['e_machine']}, expected {want}")
    if profile.arch == "armv7" and not elf["e_flags"] & EF_ARM_ABI_FLOAT_SOFT:
        raise ToolchainError(f"{profile.name}: armeabi-v7a library is not marked softfp "
                             f"(e_flags {elf['e_flags']:#x}); a hard-float object was linked in")
    undefined = sorted({s.name for s in elf.get_section_by_name(".dynsym").iter_symbols()
                        if s.name and s["st_shndx"] == "SHN_UNDEF"} - set(LIBC_IMPORTS if threads > 1 else ()))
    if undefined:
        raise ToolchainError(f"{profile.name}: library needs symbols it cannot get on Android: {undefined}")


def stub_libc(tc: Toolchain, work: Path) -> str:
    """A stub libc.so defining LIBC_IMPORTS (empty bodies, never run: bionic's libc.so is loaded on
    the phone), to link the thread pool against; the .so records DT_NEEDED libc.so."""
    (work / "libc_stub.c").write_text("".join(f"void {f}(void) {{}}\n" for f in LIBC_IMPORTS))
    [obj] = tc.compile_c(["libc_stub.c"], work, [], ("-ffreestanding",))
    run_tool([find_lld(), "-shared", "-soname", "libc.so", "--build-id=none", "-o", "libc.so", obj], work,
             "linking the stub libc.so")
    return "libc.so"


def _link(profile: TargetProfile, prefix: str, objs: list[str], builtins: str, work: Path) -> None:
    try:
        link_shared(profile, f"lib{prefix}.so", objs, builtins, work)
    except ToolchainError as exc:
        missing = sorted({line.split("undefined symbol:")[1].strip() for line in str(exc).splitlines()
                          if "undefined symbol:" in line})
        if not missing:
            raise
        raise ModelError(
            f"{profile.name}: the generated code needs {', '.join(missing)}, which a freestanding "
            f"lib{prefix}.so cannot get (no libc/libm on Android's side of the bundle): an op in this "
            "model needs a library function or CPU feature this target lacks") from None


def jni_library_for_bundle(bundle_dir: str | Path, out_dir: str | Path) -> Path:
    """The same JNI bridge and Java class for an existing single-device Linux bundle (e.g.
    `host`: run the Android binding in a desktop JVM). Writes out_dir/lib<name>.so (linked the
    Android way) and out_dir/java/...; returns the library path."""
    from edgec.packager.bundle import read_manifest
    from edgec.packager.cglue import TensorSpec as TS
    from edgec.targets import get_profile

    src, out = Path(bundle_dir).resolve(), Path(out_dir).resolve()
    m = read_manifest(src)
    if m.get("slices") or m["target"]["object_format"] != "elf":
        raise ToolchainError(f"{src} is not a single-device Linux bundle")
    prefix, profile = m["name"], get_profile(m["device"])
    specs = [[TS(t["name"], t["dtype"], t["shape"], t["bytes"], t["arena_offset"]) for t in m[k]]
             for k in ("inputs", "outputs")]
    out.mkdir(parents=True, exist_ok=True)
    write_glue(out, prefix, m["edgec_version"], [profile.name], m["arena_bytes"], *specs)
    tc = find_toolchain(profile)
    work = Path(tempfile.mkdtemp(prefix="edgec-jni-"))
    try:
        for d in ("src", "include", "obj"):
            shutil.copytree(src / d, work / d)
        shutil.copytree(out / "android" / "jni", work / "jni")
        nostd = ("-ffreestanding", "-fno-stack-protector")
        objs = tc.compile_c([f"src/{prefix}_model.c", "src/edgec_runtime.c"], work, ["include"], nostd)
        objs += tc.compile_c([f"jni/{prefix}_jni.c"], work, ["include", "jni"], nostd)
        objs += [f"obj/{prefix}_kernels.o", f"obj/{prefix}_weights.o"]
        _link(profile, prefix, objs, builtins_library(tc), work)
        shutil.copyfile(work / f"lib{prefix}.so", out / f"lib{prefix}.so")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out / f"lib{prefix}.so"


def build_android(bundle: Path, prefix: str, version: str, profiles: list[TargetProfile],
                  inputs: list[TensorSpec], outputs: list[TensorSpec], arena_bytes: int,
                  threads: int = 1) -> list[dict]:
    abis = [p.abi for p in profiles]
    write_glue(bundle, prefix, version, abis, arena_bytes, inputs, outputs, threads)
    pool = threads > 1
    entries = []
    for p in profiles:
        tc = find_toolchain(p)
        # Scratch copy with relative paths, so objects do not depend on where the build ran.
        work = Path(tempfile.mkdtemp(prefix="edgec-android-"))
        try:
            for d in ("src", "include"):
                shutil.copytree(bundle / d, work / d)
            shutil.copytree(bundle / "android" / "jni", work / "jni")
            shutil.copytree(bundle / "obj" / p.abi, work / "obj")
            srcs = [f"src/{prefix}_model.c", "src/edgec_runtime.c", *(["src/edgec_threads.c"] if pool else [])]
            c_objs = tc.compile_c(srcs, work, ["include"], POOL_FLAGS.get(p.arch, ("-DEDGEC_THREADS=1",)) if pool else ())
            jni_objs = tc.compile_c([f"jni/{prefix}_jni.c"], work, ["include", "jni"])
            objs = [*c_objs, f"obj/{prefix}_kernels.o", f"obj/{prefix}_weights.o"]
            tc.archive(f"lib{prefix}.a", objs, work)
            libc = [stub_libc(tc, work)] if pool else []
            _link(p, prefix, [*objs, *jni_objs, *libc], builtins_library(tc), work)
            so = (work / f"lib{prefix}.so").read_bytes()
            check_shared_library(p, so, threads)
            lib_dir, jni_dir = bundle / "lib" / p.abi, bundle / "android" / "jniLibs" / p.abi
            lib_dir.mkdir(parents=True)
            jni_dir.mkdir(parents=True)
            shutil.copyfile(work / f"lib{prefix}.a", lib_dir / f"lib{prefix}.a")
            (jni_dir / f"lib{prefix}.so").write_bytes(so)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        entries.append({"abi": p.abi, "device": p.name, "triple": p.triple, "float_abi": p.float_abi,
                        "min_api": int(p.min_os), "static_library": f"lib/{p.abi}/lib{prefix}.a",
                        "shared_library": f"android/jniLibs/{p.abi}/lib{prefix}.so",
                        "objects": [f"obj/{p.abi}/{prefix}_kernels.o", f"obj/{p.abi}/{prefix}_weights.o"]})
    return entries

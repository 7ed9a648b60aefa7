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
(objects built for the device platform are rejected by the simulator link).

`--threads N` (N > 1) adds the pthread pool (src/edgec_threads.c, -DEDGEC_THREADS=1), whose few
functions (LIBSYSTEM) come from libSystem, which every iOS app links. edgec has no iOS SDK: the
pool is compiled against DARWIN_HEADERS, the declarations it uses with Darwin's LP64 layouts
(<sys/_pthread/_pthread_types.h>: a mutex is a long and 56 bytes, a condition variable a long
and 40 bytes, pthread_t a pointer; CLOCK_MONOTONIC is 6). Xcode/CMake builds from src/ use the
SDK's own headers."""

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
# What the thread pool takes from libSystem (Mach-O names).
LIBSYSTEM = frozenset(f"_{f}" for f in (
    "clock_gettime", "pthread_cond_broadcast", "pthread_cond_destroy", "pthread_cond_init", "pthread_cond_signal",
    "pthread_cond_wait", "pthread_create", "pthread_join", "pthread_mutex_destroy", "pthread_mutex_init",
    "pthread_mutex_lock", "pthread_mutex_unlock"))
DARWIN_HEADERS = {"pthread.h": """/* edgec: the part of Darwin's <pthread.h> its thread pool uses (LP64). */
typedef struct _opaque_pthread_t *pthread_t;
typedef struct { long __sig; char __opaque[56]; } pthread_attr_t;
typedef struct { long __sig; char __opaque[56]; } pthread_mutex_t;
typedef struct { long __sig; char __opaque[8]; } pthread_mutexattr_t;
typedef struct { long __sig; char __opaque[40]; } pthread_cond_t;
typedef struct { long __sig; char __opaque[8]; } pthread_condattr_t;
int pthread_create(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
int pthread_join(pthread_t, void **);
int pthread_mutex_init(pthread_mutex_t *, const pthread_mutexattr_t *);
int pthread_mutex_destroy(pthread_mutex_t *);
int pthread_mutex_lock(pthread_mutex_t *);
int pthread_mutex_unlock(pthread_mutex_t *);
int pthread_cond_init(pthread_cond_t *, const pthread_condattr_t *);
int pthread_cond_destroy(pthread_cond_t *);
int pthread_cond_wait(pthread_cond_t *, pthread_mutex_t *);
int pthread_cond_signal(pthread_cond_t *);
int pthread_cond_broadcast(pthread_cond_t *);
""", "time.h": """/* edgec: the part of Darwin's <time.h> its thread pool uses (iOS 10+). */
struct timespec { long tv_sec; long tv_nsec; };
typedef enum { _CLOCK_REALTIME = 0, _CLOCK_MONOTONIC = 6 } clockid_t;
#define CLOCK_MONOTONIC _CLOCK_MONOTONIC
int clock_gettime(clockid_t, struct timespec *);
"""}
PLATFORM_OF = {"": "ios", "simulator": "ios-simulator"}
ARCH_NAME = {"aarch64": "arm64", "x86_64": "x86_64"}


def _variant(p: TargetProfile) -> str:
    return "simulator" if p.triple.endswith("-simulator") else ""


def check_slice(profile: TargetProfile, objects: dict[str, bytes], threads: int = 1) -> None:
    """Platform, minimum OS and CPU of every object; no external symbol beyond compiler-rt (and
    the pool's LIBSYSTEM functions in a threaded build)."""
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
    missing = sorted(undefined - defined - COMPILER_RT - (LIBSYSTEM if threads > 1 else frozenset()))
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
              inputs: list[TensorSpec], outputs: list[TensorSpec], arena_bytes: int,
              threads: int = 1) -> list[dict]:
    entries = []
    srcs, flags = [f"src/{prefix}_model.c", "src/edgec_runtime.c"], ()
    if threads > 1:  # no system headers at all: ours (DARWIN_HEADERS) and clang's stddef/stdint
        srcs, flags = [*srcs, "src/edgec_threads.c"], ("-DEDGEC_THREADS=1", "-nostdlibinc", "-Idarwin")
    for p in profiles:
        tc = find_toolchain(p)
        work = Path(tempfile.mkdtemp(prefix="edgec-ios-"))
        try:
            for d in ("src", "include"):
                shutil.copytree(bundle / d, work / d)
            shutil.copytree(bundle / "obj" / p.abi, work / "obj")
            (work / "darwin").mkdir()
            for h, text in DARWIN_HEADERS.items():
                (work / "darwin" / h).write_text(text)
            c_objs = tc.compile_c(srcs, work, ["include"], flags)
            objs = [*c_objs, f"obj/{prefix}_kernels.o", f"obj/{prefix}_weights.o"]
            check_slice(p, {o: (work / o).read_bytes() for o in objs}, threads)
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
        st.swift_source(prefix, version, arena_bytes, inputs, outputs, threads))
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

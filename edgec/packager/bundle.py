"""The bundle on disk (layout in docs/bundle-format.md). Written into a temporary sibling
directory and moved into place only when complete, so a failed build never leaves a
half-written `-o`."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgec.errors import EdgecError, ModelError
from edgec.packager import cglue, templates
from edgec.packager.jni_templates import java_class_name
from edgec.packager.literals import prefix_problem
from edgec.packager.manifest import (  # noqa: F401  (re-exported: the loaders import them from here)
    check_out_dir,
    read_manifest,
    sha256_file,
    verify_bundle,
)
from edgec.toolchain import find_toolchain

if TYPE_CHECKING:  # the driver makes CompiledModels; packagers only read them
    from edgec.driver import CompiledModel

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime_c"
FORMAT_VERSION = 1


@dataclass
class Bundle:
    path: Path
    manifest: dict

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def static_library(self) -> Path:
        if self.manifest.get("slices"):  # phone bundle (packager/mobile.py): the first slice's
            return self.path / self.manifest["slices"][0]["static_library"]
        return self.path / "lib" / f"lib{self.name}.a"

    @property
    def shared_library(self) -> Path:
        if self.manifest.get("slices"):
            return self.path / self.manifest["slices"][0].get("shared_library", f"lib/lib{self.name}.so")
        return self.path / "lib" / f"lib{self.name}.so"


def write_bundle(out_dir: str | Path, compiled: CompiledModel, *, prefix: str, version: str,
                 manifest_extra: dict) -> Bundle:
    """The host/Linux bundle of one compiled model (edgec/driver.py): sources, objects, the
    static and shared library built with the target's toolchain, and the manifest."""
    profile, threads = compiled.profile, compiled.options.threads
    kernels_obj, weights_obj = compiled.kernels_obj, compiled.weights_obj
    weights, arena_bytes = compiled.plan.weights, compiled.arena_bytes
    table = compiled.profile_table  # `--profile`: the timer table behind the memory plan
    timing = cglue.ProfileGlue(table.kernels, table.offset, table.timer) if table else None
    inputs, outputs = compiled.inputs, compiled.outputs
    out = Path(out_dir).resolve()
    toolchain = find_toolchain(profile)
    tmp = make_staging_dir(out)
    try:
        for d in ("include", "src", "lib", "obj", "examples"):
            (tmp / d).mkdir()
        shutil.copyfile(RUNTIME_DIR / "edgec_runtime.h", tmp / "include" / "edgec_runtime.h")
        shutil.copyfile(RUNTIME_DIR / "edgec_runtime.c", tmp / "src" / "edgec_runtime.c")
        (tmp / "include" / f"{prefix}.h").write_text(cglue.header(prefix, arena_bytes, inputs, outputs, timing))
        (tmp / "src" / f"{prefix}_model.c").write_text(cglue.source(
            prefix, version, arena_bytes, len(weights), cglue.weights_checksum(weights), inputs, outputs,
            max_threads=threads, profile=timing))
        runtime_srcs = [f"src/{prefix}_model.c", "src/edgec_runtime.c"]
        if timing:  # the table's readers; bundles without --profile carry none of it
            shutil.copyfile(RUNTIME_DIR / "edgec_profile.h", tmp / "include" / "edgec_profile.h")
            shutil.copyfile(RUNTIME_DIR / "edgec_profile.c", tmp / "src" / "edgec_profile.c")
            runtime_srcs.append("src/edgec_profile.c")
        thread_flags: tuple[str, ...] = ()
        if threads > 1:  # a pthread pool; single-thread bundles need no pthreads at all
            shutil.copyfile(RUNTIME_DIR / "edgec_threads.c", tmp / "src" / "edgec_threads.c")
            runtime_srcs.append("src/edgec_threads.c")
            thread_flags = ("-DEDGEC_THREADS=1", "-pthread")
        (tmp / "obj" / f"{prefix}_kernels.o").write_bytes(kernels_obj)
        (tmp / "obj" / f"{prefix}_weights.o").write_bytes(weights_obj)
        (tmp / "examples" / "main.c").write_text(templates.example_main(prefix))
        (tmp / "CMakeLists.txt").write_text(templates.cmakelists(prefix, threads > 1, timing is not None))

        # Build the library in a scratch dir with relative paths (reproducible objects).
        work = Path(tempfile.mkdtemp(prefix="edgec-build-"))
        try:
            shutil.copytree(tmp / "src", work / "src")
            shutil.copytree(tmp / "include", work / "include")
            shutil.copytree(tmp / "obj", work / "obj")
            c_objs = toolchain.compile_c(runtime_srcs, work, ["include"], thread_flags)
            objs = [*c_objs, f"obj/{prefix}_kernels.o", f"obj/{prefix}_weights.o"]
            toolchain.archive(f"lib{prefix}.a", objs, work)
            shutil.copyfile(work / f"lib{prefix}.a", tmp / "lib" / f"lib{prefix}.a")
            if profile.object_format == "elf":
                toolchain.link_shared(f"lib{prefix}.so", [*objs, *thread_flags[1:]], work)
                shutil.copyfile(work / f"lib{prefix}.so", tmp / "lib" / f"lib{prefix}.so")
        finally:
            shutil.rmtree(work, ignore_errors=True)

        manifest = {
            "format_version": FORMAT_VERSION,
            "edgec_version": version,
            "name": prefix,
            "device": profile.name,
            "target": profile.summary(),
            "inputs": [t.to_json() for t in inputs],
            "outputs": [t.to_json() for t in outputs],
            "arena_bytes": arena_bytes,
            "weight_bytes": len(weights),
            "code_bytes": len(kernels_obj),
            **manifest_extra,
        }
        if table:
            manifest["profile"] = {"timer": table.timer, "table_offset": table.offset,
                                   "layers": compiled.profile_layers}
        finish_bundle(tmp, out, manifest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Bundle(out, manifest)


def make_staging_dir(out: Path) -> Path:
    """A fresh sibling of `out` to write the bundle into, after checking that `out` may be
    replaced at all (edgec/packager/manifest.py: only an empty directory or a bundle of ours)."""
    check_out_dir(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as exc:
        raise EdgecError(f"cannot write the bundle to {out}: {exc.strerror or exc}") from None


def finish_bundle(tmp: Path, out: Path, manifest: dict) -> None:
    """Record the sha256 of every file in `manifest`, write manifest.json, then move the
    complete bundle from `tmp` into `out`. An earlier bundle there is replaced only if it is
    still one that edgec wrote, unmodified (checked again: the build took a while), and it is
    moved aside before the new one moves in, so a failure never leaves neither."""
    manifest["files"] = {p.relative_to(tmp).as_posix(): sha256_file(p)
                         for p in sorted(tmp.rglob("*")) if p.is_file()}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    check_out_dir(out)
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        out.rename(old / "bundle")
    try:
        tmp.rename(out)
    except OSError:
        if old is not None:
            (old / "bundle").rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# Class names of the Java/Swift bindings (derived from the prefix) that would shadow java.lang
# or Swift standard types inside the generated sources.
_BINDING_CLASH = frozenset("""Object String System Math Integer Long Float Double Byte Short Character
Boolean Class Thread Exception Error Runtime Number Void Override Deprecated Iterable Enum Record
Data Int Array Dictionary Set Optional Result Never Any Self Type Protocol Foundation""".split())


def check_prefix(prefix: str) -> str:
    """`--name`: a C identifier that cannot clash with the runtime, C keywords, system headers
    or the bindings' class names (edgec/packager/literals.py)."""
    problem = prefix_problem(prefix)
    if problem is None and java_class_name(prefix) in _BINDING_CLASH:
        problem = (f"bundle name {prefix!r} would name the Java/Swift class {java_class_name(prefix)!r}, "
                   "which clashes with a standard type")
    if problem:
        raise ModelError(problem)
    return prefix

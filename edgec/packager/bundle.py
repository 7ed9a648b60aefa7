"""The bundle on disk (layout in DESIGN.md). Written into a temporary sibling directory and moved
into place only when complete, so a failed build never leaves a half-written `-o`."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgec.errors import EdgecError, ModelError
from edgec.packager import cglue, templates
from edgec.targets import TargetProfile
from edgec.toolchain import find_toolchain

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


def read_manifest(path: str | Path) -> dict:
    mpath = Path(path) / "manifest.json"
    if not mpath.is_file():
        raise EdgecError(f"{path} is not an edgec bundle (no manifest.json)")
    try:
        return json.loads(mpath.read_text())
    except json.JSONDecodeError as exc:
        raise EdgecError(f"{mpath} is corrupt: {exc}") from None


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify_bundle(path: Path, manifest: dict) -> None:
    """Check every file against the sha256 recorded in the manifest."""
    for rel, digest in manifest.get("files", {}).items():
        f = path / rel
        if not f.is_file():
            raise EdgecError(f"bundle file missing: {f}")
        if sha256_file(f) != digest:
            raise EdgecError(f"bundle file {f} does not match its sha256 in manifest.json (modified or corrupt)")


def _prepare_out_dir(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "manifest.json").is_file())):
        raise EdgecError(f"refusing to overwrite {out}: it exists and is not an edgec bundle")


def write_bundle(out_dir: str | Path, *, prefix: str, profile: TargetProfile, version: str,
                 kernels_obj: bytes, weights_obj: bytes, weights: bytes, arena_bytes: int,
                 inputs: list[cglue.TensorSpec], outputs: list[cglue.TensorSpec],
                 manifest_extra: dict, threads: int = 1) -> Bundle:
    out = Path(out_dir).resolve()
    _prepare_out_dir(out)
    toolchain = find_toolchain(profile)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for d in ("include", "src", "lib", "obj", "examples"):
            (tmp / d).mkdir()
        shutil.copyfile(RUNTIME_DIR / "edgec_runtime.h", tmp / "include" / "edgec_runtime.h")
        shutil.copyfile(RUNTIME_DIR / "edgec_runtime.c", tmp / "src" / "edgec_runtime.c")
        (tmp / "include" / f"{prefix}.h").write_text(cglue.header(prefix, arena_bytes, inputs, outputs))
        (tmp / "src" / f"{prefix}_model.c").write_text(cglue.source(
            prefix, version, arena_bytes, len(weights), cglue.weights_checksum(weights), inputs, outputs,
            max_threads=threads))
        runtime_srcs = [f"src/{prefix}_model.c", "src/edgec_runtime.c"]
        thread_flags: tuple[str, ...] = ()
        if threads > 1:  # a pthread pool; single-thread bundles need no pthreads at all
            shutil.copyfile(RUNTIME_DIR / "edgec_threads.c", tmp / "src" / "edgec_threads.c")
            runtime_srcs.append("src/edgec_threads.c")
            thread_flags = ("-DEDGEC_THREADS=1", "-pthread")
        (tmp / "obj" / f"{prefix}_kernels.o").write_bytes(kernels_obj)
        (tmp / "obj" / f"{prefix}_weights.o").write_bytes(weights_obj)
        (tmp / "examples" / "main.c").write_text(templates.example_main(prefix))
        (tmp / "CMakeLists.txt").write_text(templates.cmakelists(prefix, threads > 1))

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
        finish_bundle(tmp, out, manifest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Bundle(out, manifest)


def finish_bundle(tmp: Path, out: Path, manifest: dict) -> None:
    """Record the sha256 of every file in `manifest`, write manifest.json, then move the
    complete bundle from `tmp` into `out` (replacing an earlier bundle there)."""
    manifest["files"] = {str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def check_prefix(prefix: str) -> str:
    if not prefix.isidentifier() or not prefix.isascii():
        raise ModelError(f"bundle name {prefix!r} must be a C identifier")
    return prefix

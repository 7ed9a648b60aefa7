"""Reading a bundle back: the manifest's shape, the sha256 of every file, and whether a directory
is a bundle edgec wrote (the only kind of directory `edgec build -o` may replace).

A bundle directory is user-controlled input like a model file: manifest.json may be truncated,
edited or hostile. Everything the loader and the CLI use from it is checked here first, so they
can index it without further guards.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path, PurePosixPath

from edgec.errors import EdgecError
from edgec.packager.cglue import ONNX_DTYPE
from edgec.packager.literals import prefix_problem

MANIFEST = "manifest.json"
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_MAX_MANIFEST_BYTES = 64 << 20  # a real manifest is a few KiB; never parse a huge file
_MAX_BYTES = 1 << 40  # arena/tensor sizes beyond this are corrupt, not ambitious


class BundleError(EdgecError):
    """A directory that is not an intact edgec bundle."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(path: str | Path) -> dict:
    """manifest.json of bundle `path`, checked field by field (BundleError otherwise)."""
    mpath = Path(path) / MANIFEST
    try:
        if not mpath.is_file():
            raise BundleError(f"{path} is not an edgec bundle (no {MANIFEST})")
        if mpath.stat().st_size > _MAX_MANIFEST_BYTES:
            raise BundleError(f"{mpath} is too large to be an edgec manifest")
        m = json.loads(mpath.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BundleError(f"{mpath} is corrupt: {str(exc).splitlines()[0][:200]}") from None
    except OSError as exc:
        raise BundleError(f"cannot read {mpath}: {exc.strerror or exc}") from None
    check_manifest(m, mpath)
    return m


def _need(cond: bool, mpath: Path, what: str) -> None:
    if not cond:
        raise BundleError(f"{mpath} is corrupt: {what}")


def _is_int(v: object, lo: int = 0, hi: int = _MAX_BYTES) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _check_tensor(t: object, mpath: Path, where: str) -> None:
    _need(isinstance(t, dict), mpath, f"{where} is not an object")
    assert isinstance(t, dict)
    _need(isinstance(t.get("name"), str), mpath, f"{where}.name is not a string")
    _need(t.get("dtype") in ONNX_DTYPE, mpath, f"{where}.dtype {str(t.get('dtype'))[:40]!r} is not a known dtype")
    shape = t.get("shape")
    _need(isinstance(shape, list) and len(shape) <= 16 and all(_is_int(d, 0, 1 << 31) for d in shape),
          mpath, f"{where}.shape is not a list of sizes")
    import numpy as np

    nbytes = math.prod(shape) * np.dtype(t["dtype"]).itemsize
    _need(t.get("bytes") == nbytes, mpath, f"{where}.bytes does not match its shape and dtype")
    _need(_is_int(t.get("arena_offset")), mpath, f"{where}.arena_offset is not a byte offset")


def check_manifest(m: object, mpath: Path) -> None:
    _need(isinstance(m, dict), mpath, "not a JSON object")
    assert isinstance(m, dict)
    _need(isinstance(m.get("format_version"), int), mpath, "no format_version")
    _need(isinstance(m.get("edgec_version"), str), mpath, "no edgec_version")
    problem = prefix_problem(m.get("name"))
    _need(problem is None, mpath, f"name: {problem}")
    _need(isinstance(m.get("device"), str), mpath, "device is not a string")
    target = m.get("target")
    _need(isinstance(target, dict) and isinstance(target.get("arch"), str), mpath, "target.arch missing")
    for key in ("arena_bytes", "weight_bytes"):
        _need(_is_int(m.get(key)), mpath, f"{key} is not a byte count")
    for kind in ("inputs", "outputs"):
        ts = m.get(kind)
        _need(isinstance(ts, list), mpath, f"{kind} is not a list")
        for k, t in enumerate(ts):
            _check_tensor(t, mpath, f"{kind}[{k}]")
            _need(t["arena_offset"] + t["bytes"] <= m["arena_bytes"], mpath,
                  f"{kind}[{k}] lies outside the arena")
    files = m.get("files")
    _need(isinstance(files, dict) and files, mpath, "no `files` list (sha256 of every file)")
    for rel, digest in files.items():
        _need(_safe_relpath(rel) and isinstance(digest, str) and bool(_SHA256.match(digest)), mpath,
              f"bad files entry {str(rel)[:80]!r}")
    slices = m.get("slices", [])
    _need(isinstance(slices, list) and all(isinstance(s, dict) for s in slices), mpath, "slices is not a list")
    if "profile" in m:
        _check_profile(m["profile"], m["arena_bytes"], mpath)


def _check_profile(p: object, arena_bytes: int, mpath: Path) -> None:
    """A `--profile` build's table and layers (docs/profiling.md), as the bench reads them."""
    _need(isinstance(p, dict) and p.get("timer") in ("tsc", "cntvct", "clock"), mpath, "profile.timer is unknown")
    assert isinstance(p, dict)
    layers = p.get("layers")
    _need(isinstance(layers, list) and _is_int(p.get("table_offset")), mpath, "profile has no layers or table")
    _need(p["table_offset"] + 16 * len(layers) <= arena_bytes, mpath, "profile table lies outside the arena")
    for k, layer in enumerate(layers):
        ok = (isinstance(layer, dict) and all(isinstance(layer.get(f), str) for f in ("name", "op", "symbol"))
              and _is_int(layer.get("macs"), 0, 1 << 62) and isinstance(layer.get("shape"), list)
              and all(_is_int(d, 0, 1 << 31) for d in layer["shape"]))
        _need(ok, mpath, f"profile.layers[{k}] is not a layer (name, op, symbol, shape, macs)")


def _safe_relpath(rel: str) -> bool:
    p = PurePosixPath(rel)
    return bool(rel) and not p.is_absolute() and ".." not in p.parts and "\\" not in rel and "\0" not in rel


def verify_bundle(path: Path, manifest: dict, must_cover: list[str] = ()) -> None:
    """Check every file against its sha256 in the manifest. `must_cover`: files the caller is
    about to load or link, which must be listed (an unlisted library would run unchecked)."""
    files = manifest["files"]
    for rel in must_cover:
        if rel not in files:
            raise BundleError(f"{path / rel} is not listed in manifest.json; refusing to load it")
    for rel, digest in files.items():
        f = path / rel
        if f.is_symlink() or not f.is_file():
            raise BundleError(f"bundle file missing or not a regular file: {f}")
        if sha256_file(f) != digest:
            raise BundleError(f"bundle file {f} does not match its sha256 in manifest.json (modified or corrupt)")


def owned_bundle_problem(out: Path) -> str | None:
    """None if `out` may be replaced by a new bundle: it does not exist, is an empty directory, or
    is a bundle edgec wrote whose files are all still exactly as written (a manifest with a
    valid file list whose sha256s match, and nothing else in the directory). Otherwise, why not.
    A foreign manifest.json cannot fake this: it would have to list every file with its hash."""
    try:
        return _owned_bundle_problem(out)
    except OSError as exc:  # too long a name, a permission, /proc: say so instead of guessing
        return f"it cannot be examined ({exc.strerror or exc})"


def _owned_bundle_problem(out: Path) -> str | None:
    if out.is_symlink() and not out.exists():
        return "it is a dangling symbolic link"
    if not out.exists():
        return None
    if not out.is_dir():
        return "it exists and is not a directory"
    try:
        entries = sorted(out.rglob("*"))
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    if not entries:
        return None
    try:
        m = read_manifest(out)
        verify_bundle(out, m)
    except EdgecError:
        return "it holds files and is not an unmodified edgec bundle"
    listed = {out / rel for rel in m["files"]} | {out / MANIFEST}
    for e in entries:
        if e.is_symlink() or (e.is_file() and e not in listed) or not (e.is_file() or e.is_dir()):
            return f"it holds {e.relative_to(out)}, which edgec did not write"
    return None


def check_out_dir(out: Path) -> None:
    problem = owned_bundle_problem(out)
    if problem:
        raise EdgecError(f"refusing to overwrite {short_path(out)}: {problem}; nothing was changed "
                         "(choose a new or empty directory)")


def short_path(p: Path, limit: int = 120) -> str:
    """A path for a one-line message: the middle of a very long one is elided."""
    text = str(p)
    return text if len(text) <= limit else f"{text[:limit // 2 - 2]}...{text[-(limit // 2 - 1):]}"

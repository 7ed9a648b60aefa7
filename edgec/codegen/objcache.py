"""The object cache: machine code of one kernel (or of the graph's entry function) stored under a
hash of everything that decides it, so a rebuild compiles only what changed (docs/build_time.md).

Location: `$EDGEC_CACHE_DIR`, else `$XDG_CACHE_HOME/edgec/objects`, else `~/.cache/edgec/objects`.
`edgec build --no-cache` (`edgec.build(cache=False)`) or `EDGEC_NO_CACHE=1` turn it off.
The key of a kernel is made before its IR exists (edgec/codegen/kernel_key.py), from the node,
its values (constant data included), the target, the options and a digest of edgec's own source
and the LLVM version: a changed lowering changes every key, so nothing stale is ever reused.
Each entry ends with the sha256 of its content; a damaged entry is ignored and rewritten.
Writes are atomic (a temporary file renamed), so parallel builds share one cache safely.
The cache keeps under `EDGEC_CACHE_MAX_MB` (default 2048) by dropping the least recently used.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import cache
from pathlib import Path

import llvmlite
import llvmlite.binding as llvm

FORMAT = b"edgec-objcache-1"
_DIGEST = 32


def cache_dir() -> Path:
    if os.environ.get("EDGEC_CACHE_DIR"):
        return Path(os.environ["EDGEC_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edgec" / "objects"


def cache_enabled(requested: bool) -> bool:
    return requested and os.environ.get("EDGEC_NO_CACHE", "") in ("", "0")


@cache
def toolchain_digest() -> bytes:
    """edgec's own source (every .py and .c of the package) and the LLVM that compiles: any
    change to a lowering, a pass or LLVM gives new keys."""
    h = hashlib.sha256(FORMAT)
    h.update(f"llvmlite {llvmlite.__version__} llvm {llvm.llvm_version_info}".encode())
    root = Path(__file__).resolve().parent.parent
    for p in sorted(root.rglob("*")):
        if p.suffix in (".py", ".c", ".h") and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(root)).encode() + b"\0")
            h.update(p.read_bytes())
    return h.digest()


class ObjectCache:
    """Objects by key; `None` directory = a cache that never hits and never writes."""

    def __init__(self, directory: Path | None, max_bytes: int | None = None):
        self.dir = directory
        mb = os.environ.get("EDGEC_CACHE_MAX_MB", "")
        self.max_bytes = max_bytes if max_bytes is not None else (int(mb) << 20 if mb.isdigit() else 2048 << 20)

    @classmethod
    def open(cls, enabled: bool) -> ObjectCache:
        return cls(cache_dir() if cache_enabled(enabled) else None)

    def _path(self, key: str) -> Path:
        assert self.dir is not None
        return self.dir / key[:2] / f"{key[2:]}.o"

    def get(self, key: str | None) -> bytes | None:
        if self.dir is None or key is None:
            return None
        path = self._path(key)
        try:
            blob = path.read_bytes()
        except OSError:
            return None
        data, digest = blob[:-_DIGEST], blob[-_DIGEST:]
        if len(blob) < _DIGEST or hashlib.sha256(data).digest() != digest:
            return None  # damaged (a full disk, a crash of another tool): compile again
        try:
            os.utime(path)  # least recently used goes first
        except OSError:
            pass
        return data

    def put(self, key: str | None, data: bytes) -> None:
        """Store `data`; a cache that cannot be written (read-only home, full disk) is skipped:
        the build never fails because of its cache."""
        if self.dir is None or key is None:
            return
        path = self._path(key)
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(data + hashlib.sha256(data).digest())
            os.replace(tmp, path)
        except OSError:
            if tmp is not None:  # a half-written entry would only take space
                Path(tmp).unlink(missing_ok=True)

    def trim(self) -> None:
        """Drop the least recently used entries until the cache is under 80% of its limit."""
        if self.dir is None or not self.dir.is_dir():
            return
        entries = []
        try:
            for sub in os.scandir(self.dir):
                if sub.is_dir():
                    for e in os.scandir(sub.path):
                        st = e.stat()
                        entries.append((st.st_mtime, st.st_size, e.path))
        except OSError:
            return
        total = sum(e[1] for e in entries)
        if total <= self.max_bytes:
            return
        for _, size, path in sorted(entries):
            try:
                os.unlink(path)
            except OSError:
                continue
            total -= size
            if total <= self.max_bytes * 0.8:
                break

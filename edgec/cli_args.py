"""Command-line argument parsing shared by the `edgec` commands: input shapes, input files and
output file names. Input files are untrusted: an .npy header is read and checked against the
model's input (shape, dtype, and the bytes actually in the file) before any array is allocated."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from edgec.errors import EdgecError

MAX_DIM = 2**31 - 1


def parse_shapes(specs: list[str]) -> dict[str, list[int]]:
    shapes = {}
    for spec in specs:
        name, _, dims = spec.rpartition("=")
        try:
            if not name:
                raise ValueError
            shapes[name] = [int(d) for d in dims.replace("x", ",").split(",") if d.strip()]
        except ValueError:
            raise EdgecError(f"--input-shape {spec[:100]!r}: expected NAME=D0,D1,... (e.g. input=1,3,224,224)") from None
        bad = [d for d in shapes[name] if not 1 <= d <= MAX_DIM]
        if bad or not shapes[name]:
            raise EdgecError(f"--input-shape {spec[:100]!r}: every dim must be an integer from 1 to {MAX_DIM}")
    return shapes


def parse_bind(specs: list[str]) -> dict[str, list[float | int]]:
    """--bind NAME=V1,V2,...: numbers (an empty list binds an empty tensor)."""
    out: dict[str, list[float | int]] = {}
    for spec in specs:
        name, _, vals = spec.rpartition("=")
        try:
            if not name:
                raise ValueError
            out[name] = [float(v) if any(c in v.lower() for c in ".en") else int(v)
                         for v in (x.strip() for x in vals.split(",")) if v]
        except ValueError:
            raise EdgecError(f"--bind {spec[:100]!r}: expected NAME=V1,V2,... (e.g. axes=1 or shape=1,-1)") from None
    return out


def _read_header(f, where: str) -> tuple[tuple[int, ...], bool, np.dtype]:  # noqa: ANN001
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(f)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(f)
        raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, SyntaxError, TypeError, OverflowError, EOFError) as exc:
        raise EdgecError(f"{where} is not a readable .npy array ({str(exc).splitlines()[0][:120]})") from None


def _read_checked(f, where: str, data_bytes: int, want: dict) -> np.ndarray:  # noqa: ANN001
    """Read one .npy stream whose data part is `data_bytes` long (header included: no) after
    checking its header against the model input `want` (manifest entry)."""
    shape, fortran, dtype = _read_header(f, where)
    if dtype.hasobject:
        raise EdgecError(f"{where} holds Python objects, not numbers; refusing to load it")
    if tuple(shape) != tuple(want["shape"]):
        raise EdgecError(f"input {want['name']!r}: {where} has shape {list(shape)}, the model expects "
                         f"{want['shape']}")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes != data_bytes:
        raise EdgecError(f"{where}: its header promises {nbytes} bytes of data but it holds {data_bytes}")
    raw = f.read(nbytes)
    if len(raw) != nbytes:
        raise EdgecError(f"{where} is truncated")
    return np.frombuffer(raw, dtype).reshape(shape, order="F" if fortran else "C").copy()


def load_input(spec: str, inputs: list[dict]) -> tuple[str, np.ndarray]:
    """`NAME=FILE` (or `FILE` for a one-input model); `inputs` are the manifest's entries."""
    names = [t["name"] for t in inputs]
    name, sep, path = spec.partition("=")
    if not sep or name not in names and len(names) == 1 and Path(spec).is_file():
        if len(names) != 1:
            raise EdgecError(f"--input {spec[:100]!r}: name the input (NAME=FILE); the model's inputs are {names}")
        name, path = names[0], spec
    if name not in names:
        raise EdgecError(f"inputs do not match the model: unknown {[name]}; the model's inputs are {names}")
    want = inputs[names.index(name)]
    p = Path(path)
    if not p.is_file():
        raise EdgecError(f"input file not found: {p}")
    try:
        if p.suffix == ".npz":
            return name, _load_npz(p, want)
        with open(p, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(0)
            _read_header(f, str(p))
            header_end = f.tell()
            f.seek(0)
            return name, _read_checked(f, str(p), size - header_end, want)
    except OSError as exc:
        raise EdgecError(f"cannot read {p}: {exc.strerror or exc}") from None


def _load_npz(p: Path, want: dict) -> np.ndarray:
    try:
        with zipfile.ZipFile(p) as z:
            members = [i for i in z.infolist() if i.filename.endswith(".npy")]
            if not members:
                raise EdgecError(f"{p} holds no arrays")
            named = [i for i in members if i.filename[:-4] == want["name"]]
            if not named and len(members) > 1:
                raise EdgecError(f"{p} holds {len(members)} arrays and none is named {want['name']!r}")
            info = (named or members)[0]
            where = f"{p}:{info.filename}"
            with z.open(info) as f:
                _read_header(f, where)
                header_end = f.tell()
            with z.open(info) as f:
                return _read_checked(f, where, info.file_size - header_end, want)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        raise EdgecError(f"{p} is not a readable .npz archive ({exc})") from None


def output_file_names(names: list[str]) -> dict[str, str]:
    """Tensor name -> file name (`<name>.npy`, unsafe characters as `_`). Names that collide after
    that (`a b`, `a_b`) or that are not valid file names get their output index appended, so no
    output ever overwrites another."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for k, n in enumerate(names):
        stem = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in n)[:100]
        if not stem.strip(".") or stem.lower() in used:
            stem = f"{stem}_{k}"
        while stem.lower() in used:
            stem += f"_{k}"
        used.add(stem.lower())
        out[n] = stem + ".npy"
    return out

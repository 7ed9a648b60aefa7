"""Reading an ONNX file and its external data without trusting either.

onnx.load would follow a tensor's `location` anywhere (an absolute path, `../../etc/passwd`,
a symlink out of the model directory, a FIFO) and read whatever offset/length it names.
Here the file is parsed with load_external_data=False; every external reference is then
checked (relative, no `..`, inside the model's directory after resolving symlinks, a regular
file, offset + length within it, length equal to what the tensor's header needs) and read by
edgec, so the tensor ends up as in-memory raw_data exactly as onnx.load would leave it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath

import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto

from edgec.errors import ModelError
from edgec.importer.validate import clean_message, iter_tensors, show, tensor_nbytes

# protobuf cannot parse or serialize a message of 2 GiB or more; ONNX shape inference
# serializes the model, so a model over this size with its data inlined cannot be imported.
MAX_PROTO_BYTES = 2**31 - 1


def read_model_file(path: Path) -> onnx.ModelProto:
    """Parse `path` (a regular, non-empty file) and load its external data safely."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ModelError(f"model file not found: {show(str(path))}") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise ModelError(f"cannot read model file {show(str(path))}: "
                         f"{clean_message(exc)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ModelError(f"{show(str(path))} is a directory, not an ONNX model file")
    if not stat.S_ISREG(st.st_mode):
        raise ModelError(f"{show(str(path))} is not a regular file (a device or pipe?); expected "
                         "an ONNX model file")
    if st.st_size == 0:
        raise ModelError(f"{show(str(path))} is empty, not an ONNX model")
    if st.st_size > MAX_PROTO_BYTES:
        raise ModelError(f"{show(str(path))} is {st.st_size} bytes; an ONNX protobuf file must be "
                         "under 2 GiB (store large weights as external data)")
    with open(path, "rb") as f:
        head = f.read(8)
    from edgec.importer.tflite import is_tflite, tflite_to_onnx

    if is_tflite(head):  # a .tflite flatbuffer (edgec/importer/tflite/)
        return tflite_to_onnx(path.read_bytes(), show(str(path)))
    if path.suffix.lower() == ".tflite":
        raise ModelError(f"{show(str(path))} is not a TFLite model (no 'TFL3' file identifier)")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError, RecursionError, TypeError,
            MemoryError) as exc:
        raise ModelError(f"{show(str(path))} is not a readable ONNX model ({type(exc).__name__}: "
                         f"{clean_message(exc)})") from None
    load_external_data(proto, path.parent, st.st_size)
    return proto


def _info(t: TensorProto) -> tuple[str, int, int | None]:
    """(location, offset, length) of an external tensor; unknown keys are ignored as onnx does."""
    entries = {e.key: e.value for e in t.external_data}
    loc = entries.get("location", "")

    def number(key: str) -> int | None:
        if key not in entries:
            return None
        text = entries[key].strip()
        if not text.isdigit() or len(text) > 19:
            raise ModelError(f"tensor {show(t.name)}: external data {key} {show(entries[key])} "
                             "is not a non-negative integer")
        return int(text)

    return loc, number("offset") or 0, number("length")


def _safe_file(t: TensorProto, loc: str, base_dir: Path) -> Path:
    """The regular file `loc` names, inside `base_dir` (symlinks resolved)."""
    what = f"tensor {show(t.name)}: external data location {show(loc)}"
    if not loc or "\0" in loc:
        raise ModelError(f"{what} is empty or not a file name")
    if PurePosixPath(loc).is_absolute() or PureWindowsPath(loc).is_absolute() or \
            PureWindowsPath(loc).drive or loc.startswith(("/", "\\")):
        raise ModelError(f"{what} is absolute; expected a path relative to the model's directory")
    if ".." in loc.replace("\\", "/").split("/"):
        raise ModelError(f"{what} contains '..'; expected a path inside the model's directory")
    base = base_dir.resolve()
    try:
        target = (base / loc).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise ModelError(f"{what} cannot be resolved ({clean_message(exc)})") from None
    if not target.is_relative_to(base):
        raise ModelError(f"{what} resolves outside the model's directory")
    if target.is_dir():
        raise ModelError(f"{what} is a directory, not a data file")
    if not target.exists():
        raise ModelError(f"{what} does not exist next to the model")
    if not target.is_file():
        raise ModelError(f"{what} is not a regular file")
    return target


def load_external_data(model: onnx.ModelProto, base_dir: Path | None, proto_bytes: int = 0) -> None:
    """Replace every external reference by the checked bytes. `base_dir` None (a ModelProto
    given in memory): any external reference is an error, there is no directory to read from."""
    total = proto_bytes
    for t in iter_tensors(model):
        if t.data_location != TensorProto.EXTERNAL:
            continue
        loc, offset, length = _info(t)
        if base_dir is None:
            raise ModelError(f"tensor {show(t.name)} keeps its data in an external file "
                             f"({show(loc)}) that cannot be found from an in-memory model: pass "
                             "the .onnx file's path instead (or load it with onnx.load)")
        nbytes = tensor_nbytes(t)  # header checked before anything is read
        if length is not None and length != nbytes:
            raise ModelError(f"tensor {show(t.name)}: external data length {length} does not match "
                             f"its shape {list(t.dims)} and type (expected {nbytes} bytes)")
        path = _safe_file(t, loc, base_dir)
        size = path.stat().st_size
        if offset + nbytes > size:
            raise ModelError(f"tensor {show(t.name)}: external data at offset {offset} with length "
                             f"{nbytes} runs past the end of {show(loc)} ({size} bytes)")
        total += nbytes
        if total > MAX_PROTO_BYTES:
            raise ModelError("the model with its external data is over 2 GiB; edgec (ONNX shape "
                             "inference) cannot import protobufs that large")
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read(nbytes)
        except OSError as exc:
            raise ModelError(f"tensor {show(t.name)}: cannot read external data {show(loc)} "
                             f"({clean_message(exc)})") from None
        if len(data) != nbytes:  # the file shrank under us
            raise ModelError(f"tensor {show(t.name)}: external data {show(loc)} is truncated")
        t.raw_data = data
        t.data_location = TensorProto.DEFAULT
        del t.external_data[:]


def model_path(model: object) -> Path:
    if isinstance(model, (str, os.PathLike)):
        try:
            return Path(os.fspath(model))
        except TypeError:
            pass
    raise ModelError(f"model must be a path or an onnx.ModelProto, not {type(model).__name__}")

"""Running onnx's C++ passes (shape inference, checker, inliner) where a crash cannot kill edgec.

onnx's C++ shape inference trusts attribute values: a LayerNormalization with axis = 2**31 or
a Split whose num_outputs disagrees with its outputs ends in a segfault or abort(), which no
Python `except` catches. edgec's own checks refuse what they know of; for the rest, each C++
pass runs in a forked child (copy-on-write, so the model is not copied to send it). A child
killed by a signal becomes a ModelError; the parent only ever parses protobuf bytes.
Elsewhere than Linux (and with EDGEC_NO_SANDBOX=1, for debugging) a pass runs in-process.
"""

from __future__ import annotations

import os
import select
import signal
import struct
import sys
import time
from collections.abc import Callable

import onnx

from edgec.errors import ModelError
from edgec.importer.validate import clean_message

# A pass over an edge model takes well under a second; an endless loop in C++ does not end.
TIMEOUT_S = 600.0
_OK, _NONE, _ERR = b"O", b"N", b"E"


def _use_fork() -> bool:
    return sys.platform.startswith("linux") and hasattr(os, "fork") and \
        not os.environ.get("EDGEC_NO_SANDBOX")


Pass = Callable[[onnx.ModelProto], "onnx.ModelProto | None"]


def _child(fn: Pass, model: onnx.ModelProto, fd: int) -> None:
    try:
        result = fn(model)
        out = _NONE if result is None else _OK + result.SerializeToString()
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as text
        out = _ERR + clean_message(exc, 1000).encode(errors="replace")
    view = memoryview(struct.pack("<Q", len(out)) + out)
    while view:
        view = view[os.write(fd, view):]


def _read_all(fd: int, what: str) -> bytes:
    chunks, deadline = [], time.monotonic() + TIMEOUT_S
    while True:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(0.0, left))
        if not ready:
            raise ModelError(f"{what} did not finish within {int(TIMEOUT_S)} s on this model")
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def isolated(fn: Pass, model: onnx.ModelProto, what: str) -> onnx.ModelProto | None:
    """fn(model) (a model or None), computed in a forked child. An exception in fn is re-raised
    here as RuntimeError(its first line) for the caller to word; a crash is a ModelError."""
    if not _use_fork():
        return fn(model)
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no Python cleanup, no atexit, no pytest teardown
        code = 0
        try:
            os.close(rfd)
            if not os.environ.get("EDGEC_DEBUG"):  # C++ assertion text is not for the user
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
            _child(fn, model, wfd)
        except BaseException:  # noqa: BLE001
            code = 1
        os._exit(code)
    os.close(wfd)
    try:
        data = _read_all(rfd, what)
    except BaseException:  # a timeout or Ctrl-C: the child must not outlive the call
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(rfd)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        raise ModelError(f"{what} crashed ({name}) on this model: the model is malformed "
                         "(an attribute or shape onnx cannot handle)")
    if len(data) < 9 or struct.unpack("<Q", data[:8])[0] != len(data) - 8:
        code = os.waitstatus_to_exitcode(status)
        raise ModelError(f"{what} failed on this model (exit status {code})")
    body = data[8:]
    if body[:1] == _ERR:
        raise RuntimeError(body[1:].decode(errors="replace"))
    if body[:1] == _NONE:
        return None
    out = onnx.ModelProto()
    out.ParseFromString(body[1:])
    return out

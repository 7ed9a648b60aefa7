"""Errors a user can act on. The CLI prints their message on one line and exits with .exit_code."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class EdgecError(Exception):
    """A problem with the user's input or environment (exit code 2 by default)."""

    exit_code = 2


class EdgecWarning(UserWarning):
    """Something edgec worked around in the user's input (the CLI prints it as one line)."""


class ModelError(EdgecError):
    """The model file is not a valid ONNX model, or cannot be compiled as given."""


class UnsupportedOpsError(ModelError):
    """One or more ops have no converter; lists all of them at once."""

    def __init__(self, ops: dict[str, list[str]]):
        self.ops = ops
        parts = [f"{op} (nodes: {', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
                 for op, names in sorted(ops.items())]
        super().__init__(f"unsupported ops ({len(ops)}): " + "; ".join(parts))


class DeviceError(EdgecError):
    """Unknown device profile or a device that cannot be reached."""


class ToolchainError(EdgecError):
    """A C compiler, linker or emulator is missing or failed."""


class RunError(EdgecError):
    """Wrong input name/shape/dtype at run time, or the runtime returned an error status."""


class CheckFailed(EdgecError):
    """A check ran and failed (e.g. outputs do not match)."""

    exit_code = 1


class InternalError(EdgecError):
    """An unexpected failure inside edgec (a bug): the message names the exception; the original
    is chained as __cause__, and EDGEC_DEBUG=1 re-raises it unwrapped."""

    exit_code = 1


def wrap_unexpected(exc: BaseException) -> EdgecError:
    """The EdgecError to raise for an exception that escaped edgec's own checks."""
    if isinstance(exc, EdgecError):
        return exc
    if isinstance(exc, MemoryError):
        return EdgecError("out of memory (the model or input is too large for this machine)")
    if isinstance(exc, RecursionError):
        return ModelError("the model nests too deeply (recursion limit reached)")
    text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return InternalError(f"internal error: {type(exc).__name__}{': ' + text if text else ''} "
                         "(set EDGEC_DEBUG=1 for the traceback)")


def public_api(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator for every public entry point: only EdgecError subclasses leave it."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except EdgecError:
            raise
        except Exception as exc:
            if os.environ.get("EDGEC_DEBUG"):
                raise
            raise wrap_unexpected(exc) from exc

    return wrapper

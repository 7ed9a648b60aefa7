"""Errors a user can act on. The CLI prints their message on one line and exits with .exit_code."""

from __future__ import annotations


class EdgecError(Exception):
    """A problem with the user's input or environment (exit code 2 by default)."""

    exit_code = 2


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

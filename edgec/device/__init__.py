"""Host side of remote work: the device registry (TOML), SSH sessions with checked host keys,
device checks and on-device benchmarks. The tuner (edgec.tune) builds on `Device`:
`connect`/`reconnect` (backoff), `run` (timeout), `upload`/`fetch`, `run_dir`, and the
error kinds `DeviceLost` / `CommandTimeout` / `RemoteCommandError`."""

from __future__ import annotations

import logging
import os
import sys

from edgec.device.registry import (
    DeviceEntry,
    add_device,
    config_dir,
    get_device,
    load_devices,
    registry_path,
    remove_device,
)
from edgec.device.ssh import (
    AuthError,
    CommandResult,
    CommandTimeout,
    Device,
    DeviceLost,
    HostKeyError,
    RemoteCommandError,
)

__all__ = ["AuthError", "CommandResult", "CommandTimeout", "Device", "DeviceEntry", "DeviceLost",
           "HostKeyError", "RemoteCommandError", "add_device", "config_dir", "get_device",
           "load_devices", "open_device", "registry_path", "remove_device", "setup_logging"]


def open_device(name: str, **session_kw: object) -> Device:
    """A (not yet connected) session to the registered device `name`."""
    return Device(get_device(name), **session_kw)  # type: ignore[arg-type]


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (the CLI may be run in-process)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def setup_logging() -> None:
    """Log edgec.device (and paramiko, at debug) to stderr; level from EDGEC_LOG
    (debug | info | warning, default warning). Logs never contain key material."""
    level = getattr(logging, os.environ.get("EDGEC_LOG", "warning").upper(), logging.WARNING)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    for name in ("edgec.device", "paramiko"):
        logger = logging.getLogger(name)
        # (edgec.device.ssh gives paramiko a NullHandler, which must not count here)
        if not any(not isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(handler)
        # paramiko logs transport failures with tracebacks; our errors already say what went
        # wrong in one line, so paramiko speaks only when debug output was asked for
        # (EDGEC_LOG=debug, or EDGEC_DEBUG=1 which shows every traceback).
        loud = name == "edgec.device" or level <= logging.DEBUG or os.environ.get("EDGEC_DEBUG")
        logger.setLevel(level if loud else logging.CRITICAL + 1)

"""The device registry: named remote devices stored as TOML in the user config directory.

`EDGEC_CONFIG_DIR` overrides the directory (tests, CI); otherwise `$XDG_CONFIG_HOME/edgec` or
`~/.config/edgec`. The file holds connection facts only: host, port, user, the *path* of a
private key, the device profile and an optional exec wrapper. No passwords or key contents are
ever written (there is no password option at all: auth is by key or ssh-agent).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import tomli_w

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from edgec.errors import DeviceError
from edgec.targets import TargetProfile, get_profile

FILE_NAME = "devices.toml"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HEADER = "# edgec devices: edit with `edgec devices add/remove` (no secrets are stored here)\n"


@dataclass(frozen=True)
class DeviceEntry:
    """One registered device. `key` and `known_hosts` are paths ("" = defaults)."""

    name: str
    host: str
    user: str
    profile: str
    port: int = 22
    key: str = ""  # private key path; "" = ssh-agent, then ~/.ssh/id_* (unencrypted)
    exec_wrapper: str = ""  # e.g. "qemu-aarch64": how the device runs the profile's binaries
    known_hosts: str = ""  # "" = $EDGEC_KNOWN_HOSTS or ~/.ssh/known_hosts
    remote_tmp: str = ""  # where per-run temp dirs go on the device; "" = $TMPDIR or /tmp

    @property
    def target(self) -> TargetProfile:
        return get_profile(self.profile)

    @property
    def wrapper_argv(self) -> list[str]:
        return shlex.split(self.exec_wrapper)

    @property
    def address(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    def known_hosts_path(self) -> Path:
        path = self.known_hosts or os.environ.get("EDGEC_KNOWN_HOSTS") or "~/.ssh/known_hosts"
        return Path(path).expanduser()

    def key_path(self) -> Path | None:
        return Path(self.key).expanduser() if self.key else None

    def to_json(self) -> dict:
        return asdict(self)


def config_dir() -> Path:
    if os.environ.get("EDGEC_CONFIG_DIR"):
        return Path(os.environ["EDGEC_CONFIG_DIR"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or "~/.config"
    return Path(base).expanduser() / "edgec"


def registry_path() -> Path:
    return config_dir() / FILE_NAME


def validate(entry: DeviceEntry) -> DeviceEntry:
    """Check an entry before it is stored; returns it with the key path made absolute."""
    if not _NAME_RE.match(entry.name):
        raise DeviceError(f"device name {entry.name!r}: use letters, digits, '.', '_' or '-' (max 64)")
    if not entry.host or any(c.isspace() for c in entry.host) or entry.host.startswith("-"):
        raise DeviceError(f"device {entry.name!r}: invalid host {entry.host!r}")
    if not entry.user or any(c.isspace() for c in entry.user) or entry.user.startswith("-"):
        raise DeviceError(f"device {entry.name!r}: invalid user {entry.user!r}")
    if not 0 < entry.port < 65536:
        raise DeviceError(f"device {entry.name!r}: port {entry.port} is out of range")
    get_profile(entry.profile)  # unknown profile -> DeviceError listing the known ones
    try:
        shlex.split(entry.exec_wrapper)
    except ValueError as exc:
        raise DeviceError(f"device {entry.name!r}: cannot parse --exec-wrapper: {exc}") from None
    key = entry.key
    if key:
        path = Path(key).expanduser()
        if path.suffix == ".pub":
            raise DeviceError(f"--key {key}: give the private key file, not the .pub public key")
        if not path.is_file():
            raise DeviceError(f"--key {key}: no such file")
        # Keep `~` as written (portable config); make relative paths absolute.
        key = key if key.startswith("~") else str(path.resolve())
    return DeviceEntry(**{**asdict(entry), "key": key})


def load_devices() -> dict[str, DeviceEntry]:
    path = registry_path()
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DeviceError(f"{path}: not valid TOML ({exc}); fix or remove the file") from None
    known = {f.name for f in fields(DeviceEntry)} - {"name"}
    devices = {}
    for name, table in (data.get("devices") or {}).items():
        if not isinstance(table, dict):
            raise DeviceError(f"{path}: [devices.{name}] must be a table")
        unknown = sorted(set(table) - known)
        if unknown:
            raise DeviceError(f"{path}: device {name!r} has unknown keys {unknown}")
        try:
            devices[name] = DeviceEntry(name=name, **table)
        except TypeError as exc:
            raise DeviceError(f"{path}: device {name!r}: {exc}") from None
    return devices


def _save(devices: dict[str, DeviceEntry]) -> None:
    path = registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"devices": {}}
    for name in sorted(devices):
        d = asdict(devices[name])
        del d["name"]
        body["devices"][name] = {k: v for k, v in d.items() if v != ""}  # TOML has no null
    # Write to a sibling temp file and rename: a crash never leaves a half-written registry.
    fd, tmp = tempfile.mkstemp(prefix=".devices-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(_HEADER + tomli_w.dumps(body))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def get_device(name: str) -> DeviceEntry:
    devices = load_devices()
    if name not in devices:
        known = ", ".join(sorted(devices)) or "none registered"
        raise DeviceError(f"no registered device {name!r} ({known}); add one with `edgec devices add`")
    return devices[name]


def add_device(entry: DeviceEntry, replace: bool = False) -> DeviceEntry:
    entry = validate(entry)
    devices = load_devices()
    if entry.name in devices and not replace:
        raise DeviceError(f"device {entry.name!r} already exists; use --replace to overwrite it")
    devices[entry.name] = entry
    _save(devices)
    return entry


def remove_device(name: str) -> DeviceEntry:
    devices = load_devices()
    if name not in devices:
        raise DeviceError(f"no registered device {name!r}")
    entry = devices.pop(name)
    _save(devices)
    return entry

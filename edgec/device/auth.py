"""Who is who on an SSH connection: the device's host key against a known_hosts file, and our
key (a private key file or ssh-agent) for the user. Never a password.

Policy: an unknown host is refused unless `trust_new_host`, which records its key; a host whose
key differs from the recorded one is always refused (no flag overrides that: the user removes the
old entry with ssh-keygen -R). Messages and logs carry paths and SHA256 fingerprints only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import paramiko

from edgec.device.registry import DeviceEntry
from edgec.errors import DeviceError

log = logging.getLogger("edgec.device")

_DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")


class HostKeyError(DeviceError):
    """Unknown or changed host key: never retried, never silently accepted."""


class AuthError(DeviceError):
    """No offered key was accepted (or a key cannot be used without a passphrase)."""


def host_key_name(host: str, port: int) -> str:
    """The known_hosts name OpenSSH uses: `host`, or `[host]:port` off port 22."""
    return host if port == 22 else f"[{host}]:{port}"


# -- host keys ----------------------------------------------------------------------------------------
def known_host_keys(entry: DeviceEntry) -> dict[str, paramiko.PKey]:
    """{key type: key} recorded for the device (plain or hashed known_hosts entries)."""
    path = entry.known_hosts_path()
    if not path.is_file():
        return {}
    keys = paramiko.HostKeys()
    try:
        keys.load(str(path))
    except (OSError, paramiko.SSHException) as exc:
        raise HostKeyError(f"cannot read known_hosts file {path}: {exc}") from None
    found = keys.lookup(host_key_name(entry.host, entry.port))
    return {k: found[k] for k in found} if found else {}


def prefer_known_key_types(t: paramiko.Transport, known: dict[str, paramiko.PKey]) -> None:
    """Ask for the host key type we have on record, so a server with several host keys cannot
    make us compare against a type we know nothing about."""
    if not known:
        return
    opts = t.get_security_options()
    # A recorded ssh-rsa key is negotiated as one of the SHA-2 signature algorithms.
    algos = [a for k in known for a in (["rsa-sha2-512", "rsa-sha2-256"] if k == "ssh-rsa" else [k])]
    wanted = [a for a in algos if a in opts.key_types]
    opts.key_types = wanted + [k for k in opts.key_types if k not in wanted]


def verify_host_key(entry: DeviceEntry, key: paramiko.PKey, known: dict[str, paramiko.PKey],
                    trust_new_host: bool) -> None:
    path = entry.known_hosts_path()
    name = host_key_name(entry.host, entry.port)
    presented = f"{key.get_name()} {key.fingerprint}"
    if known:
        if known.get(key.get_name()) == key:
            return
        recorded = ", ".join(f"{k} {v.fingerprint}" for k, v in known.items())
        raise HostKeyError(
            f"HOST KEY MISMATCH for {name} (device {entry.name!r}): {path} records {recorded} but "
            f"the device presented {presented}. Someone may be intercepting the connection, or the "
            f"device was reinstalled; if you are sure it is the latter, remove the old entry with "
            f"`ssh-keygen -R '{name}' -f {path}` and connect again with --trust-new-host")
    if not trust_new_host:
        raise HostKeyError(
            f"unknown host {name} (device {entry.name!r}): its key {presented} is not in {path}. "
            f"Compare the fingerprint with `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` on the "
            f"device, then rerun with --trust-new-host to record it")
    _record_host_key(path, name, key)
    log.warning("%s: recorded new host key %s for %s in %s", entry.name, presented, name, path)


def _record_host_key(path: Path, name: str, key: paramiko.PKey) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        prefix = ""
        if path.is_file() and path.stat().st_size:
            with path.open("rb") as f:
                f.seek(-1, os.SEEK_END)
                prefix = "" if f.read(1) == b"\n" else "\n"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write(f"{prefix}{name} {key.get_name()} {key.get_base64()}\n")
    except OSError as exc:
        raise HostKeyError(f"cannot record the host key in {path}: {exc}") from None


# -- user authentication -------------------------------------------------------------------------------
def load_key(path: Path) -> paramiko.PKey:
    """A private key file; PasswordRequiredException when it is passphrase-protected."""
    try:
        return paramiko.PKey.from_path(path)
    except TypeError as exc:  # paramiko lets cryptography's error through for OpenSSH-format keys
        if "password" in str(exc).lower():
            raise paramiko.PasswordRequiredException(str(exc)) from None
        raise ValueError(str(exc)) from None


def _candidate_keys(entry: DeviceEntry, agent: paramiko.Agent) -> Iterator[tuple[str, paramiko.PKey]]:
    """Keys to offer, lazily: the configured key file (or, if it is passphrase-protected, its
    twin in ssh-agent); with no key configured, the agent's keys, then ~/.ssh/id_*."""
    path = entry.key_path()
    if path is not None:
        try:
            key = load_key(path)
        except paramiko.PasswordRequiredException:
            pub = path.with_name(path.name + ".pub")
            want = paramiko.PublicBlob.from_file(str(pub)).key_blob if pub.is_file() else None
            matches = [k for k in agent.get_keys() if want is None or k.asbytes() == want]
            if not matches:
                raise AuthError(f"key {path} is passphrase-protected and not loaded in ssh-agent; run "
                                f"`ssh-add {path}` (edgec never asks for or stores passphrases)") from None
            yield from ((f"ssh-agent key {k.fingerprint}", k) for k in matches)
            return
        except (OSError, paramiko.SSHException, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "unsupported or invalid key"
            raise AuthError(f"cannot use key file {path}: {why}") from None
        yield str(path), key
        return
    yield from ((f"ssh-agent key {k.fingerprint}", k) for k in agent.get_keys())
    for name in _DEFAULT_KEYS:
        p = Path("~/.ssh").expanduser() / name
        if p.is_file():
            try:
                key = load_key(p)
            except (paramiko.SSHException, OSError, ValueError):
                log.debug("%s: skipping %s (passphrase-protected or unreadable)", entry.name, p)
                continue
            yield str(p), key


def authenticate(t: paramiko.Transport, entry: DeviceEntry) -> None:
    tried: list[str] = []
    agent = paramiko.Agent()
    try:
        for label, key in _candidate_keys(entry, agent):
            try:
                t.auth_publickey(entry.user, key)
            except paramiko.BadAuthenticationType as exc:
                raise AuthError(f"{entry.address} does not accept public-key authentication "
                                f"(it offers: {', '.join(exc.allowed_types) or 'nothing'})") from None
            except paramiko.AuthenticationException:
                tried.append(label)
                continue
            if t.is_authenticated():
                log.info("%s: authenticated as %s with %s", entry.name, entry.user, label)
                return
    finally:
        agent.close()
    offered = ", ".join(tried) if tried else "no key (none configured, no ssh-agent, no ~/.ssh/id_*)"
    raise AuthError(f"authentication as {entry.address} failed; offered: {offered}. Add the matching "
                    f"public key to ~/.ssh/authorized_keys on the device, or fix --key")

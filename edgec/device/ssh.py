"""SSH sessions to registered devices (paramiko).

Host-key and user-key policy live in edgec.device.auth (known_hosts checked, unknown hosts
refused unless `trust_new_host`, key file or ssh-agent, never a password). Logs carry paths,
fingerprints and commands, never key material.

`Device` is what the bench and (later) the tuner use: connect / reconnect with exponential
backoff, `run` with a per-command timeout (the remote process group is killed when it expires),
SFTP `upload` / `fetch`, and `run_dir()`, a per-run temp directory on the device removed after.
Errors are typed so a caller can classify a measurement: `DeviceLost` (cannot connect or the
connection dropped), `CommandTimeout`, `RemoteCommandError`, and the non-retryable
`HostKeyError` / `AuthError`. One `Device` is not thread-safe: use one per worker.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import shlex
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import paramiko

from edgec.device.auth import (
    AuthError,
    HostKeyError,
    authenticate,
    known_host_keys,
    prefer_known_key_types,
    verify_host_key,
)
from edgec.device.registry import DeviceEntry
from edgec.errors import DeviceError

__all__ = ["AuthError", "CommandResult", "CommandTimeout", "Device", "DeviceLost", "HostKeyError",
           "RemoteCommandError"]

log = logging.getLogger("edgec.device")
# paramiko's transport thread logs a traceback ("Socket exception: Connection reset by peer") when
# a device dies; with no handler configured, Python's last-resort handler prints it to stderr.
# The failure reaches the caller as a DeviceError instead; an application that configures
# logging still sees paramiko's records.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

_PID_MARK = b"edgec-pid:"
_MAX_OUTPUT = 64 << 20  # keep at most this much of a command's stdout / stderr
# A failed read or write can reach the caller before paramiko's transport thread has seen the
# socket close (more so on a loaded machine): how long to wait for it before calling a
# connection error a plain device error.
_DROP_GRACE_S = 2.0
# SFTP and local-file errors: the connection is fine, no need to wait for it.
_FILE_ERRNOS = frozenset({errno.ENOENT, errno.EACCES, errno.EPERM, errno.EEXIST, errno.ENOTDIR,
                          errno.EISDIR, errno.ENOSPC, errno.EROFS})


class DeviceLost(DeviceError):
    """The device cannot be reached, or the connection dropped (tuning error kind `device_lost`)."""

    kind = "device_lost"


class CommandTimeout(DeviceError):
    """A remote command ran past its timeout; its process group was killed."""

    kind = "timeout"


class RemoteCommandError(DeviceError):
    """A remote command exited with a non-zero status."""

    kind = "runtime"

    def __init__(self, message: str, result: CommandResult):
        super().__init__(message)
        self.result = result


@dataclass
class CommandResult:
    command: str
    exit_code: int
    stdout: bytes
    stderr: bytes
    seconds: float

    @property
    def text(self) -> str:
        return self.stdout.decode(errors="replace")

    def stderr_tail(self, limit: int = 800) -> str:
        return self.stderr.decode(errors="replace").strip()[-limit:]


class Device:
    """An SSH session to one registered device (see the module docstring)."""

    def __init__(self, entry: DeviceEntry, *, trust_new_host: bool = False,
                 connect_timeout: float = 10.0, attempts: int = 3, backoff_s: float = 0.25,
                 max_backoff_s: float = 8.0, keepalive_s: int = 15):
        self.entry = entry
        self.trust_new_host = trust_new_host
        self.connect_timeout = connect_timeout
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.keepalive_s = keepalive_s
        self._transport: paramiko.Transport | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self.host_key: paramiko.PKey | None = None

    # -- connection -----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def connected(self) -> bool:
        return self._transport is not None and self._transport.is_active()

    def __enter__(self) -> Device:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> Device:
        """Connect (no-op when connected). Network failures are retried with exponential
        backoff; host-key and auth failures are not (retrying cannot fix them)."""
        if self.connected:
            return self
        self.close()
        last: DeviceLost | None = None
        for attempt in range(self.attempts):
            if attempt:
                delay = min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)
                log.info("%s: retrying in %.2f s (%s)", self.name, delay, last)
                time.sleep(delay)
            try:
                self._open()
                return self
            except DeviceLost as exc:
                last = exc
        assert last is not None
        raise DeviceLost(f"{last} (gave up after {self.attempts} attempt(s))")

    def reconnect(self) -> Device:
        """Drop the current connection (if any) and connect again with backoff."""
        self.close()
        return self.connect()

    def close(self) -> None:
        for obj in (self._sftp, self._transport):
            if obj is not None:
                with contextlib.suppress(Exception):
                    obj.close()
        self._sftp = self._transport = None

    def _open(self) -> None:
        e = self.entry
        try:
            sock = socket.create_connection((e.host, e.port), timeout=self.connect_timeout)
        except OSError as exc:
            raise DeviceLost(f"cannot connect to {e.address} (device {e.name!r}): "
                             f"{exc.strerror or exc}") from None
        t = paramiko.Transport(sock)
        t.banner_timeout = t.auth_timeout = t.handshake_timeout = self.connect_timeout
        known = known_host_keys(e)
        prefer_known_key_types(t, known)
        try:
            t.start_client(timeout=self.connect_timeout)
            key = t.get_remote_server_key()
            verify_host_key(e, key, known, self.trust_new_host)
            authenticate(t, e)
        except DeviceError:
            t.close()
            raise
        except (paramiko.SSHException, EOFError, OSError) as exc:
            t.close()
            raise DeviceLost(f"SSH handshake with {e.address} failed: {exc or type(exc).__name__}") from None
        t.set_keepalive(self.keepalive_s)
        self._transport, self.host_key = t, key
        log.info("%s: connected to %s (host key %s %s)", e.name, e.address, key.get_name(), key.fingerprint)

    # -- commands -------------------------------------------------------------------------------
    def _require(self) -> paramiko.Transport:
        if not self.connected:
            if self._transport is not None:
                self.close()
                raise DeviceLost(f"connection to device {self.name!r} ({self.entry.address}) was lost")
            self.connect()
        assert self._transport is not None
        return self._transport

    def _dropped(self, grace: float = _DROP_GRACE_S) -> bool:
        """Whether the connection is gone, waiting up to `grace` s for the transport thread to
        notice a drop the caller's read or write already ran into."""
        t = self._transport
        if t is None or not t.is_active():
            return True
        if grace > 0:
            t.join(grace)  # returns as soon as the transport thread ends
        return not t.is_active()

    @contextlib.contextmanager
    def _classify(self, what: str) -> Iterator[None]:
        """Turn paramiko/socket errors into DeviceLost (connection gone) or DeviceError."""
        try:
            yield
        except DeviceError:
            raise
        except (paramiko.SSHException, paramiko.sftp.SFTPError, EOFError, OSError) as exc:
            file_error = isinstance(exc, OSError) and exc.errno in _FILE_ERRNOS
            if self._dropped(0 if file_error else _DROP_GRACE_S):
                self.close()
                raise DeviceLost(f"connection to device {self.name!r} ({self.entry.address}) was "
                                 f"lost during {what}") from None
            raise DeviceError(f"{what} on device {self.name!r} failed: "
                              f"{str(exc) or type(exc).__name__}") from None

    def run(self, command: str | Sequence[str], timeout: float = 60.0, check: bool = True) -> CommandResult:
        """Run a shell command (a string, or an argv list that is quoted for you) on the device.
        On timeout the command's whole process group is killed and CommandTimeout raised."""
        cmd = command if isinstance(command, str) else shlex.join(command)
        t = self._require()
        log.debug("%s: run (timeout %.0f s): %s", self.name, timeout, cmd)
        start = time.monotonic()
        with self._classify(f"`{cmd[:60]}`"):
            chan = t.open_session(timeout=self.connect_timeout)
            # sshd starts the command's shell with setsid(), so its pid is also the process group
            # to kill on timeout. `exit $?` keeps the shell alive (no exec of the last command),
            # so a signal death is reported as status 128+N.
            chan.exec_command(f"echo {_PID_MARK.decode()}$$\n{cmd}\nexit $?")
            try:
                out, err = self._collect(chan, t, start + timeout, f"{cmd[:120]} ({timeout:g} s)")
            finally:
                chan.close()
            status = chan.recv_exit_status()
        result = CommandResult(cmd, status, out, err, time.monotonic() - start)
        if check and status != 0:
            raise RemoteCommandError(f"command failed on device {self.name!r} (exit {status}): "
                                     f"{cmd[:120]}\n{result.stderr_tail()}", result)
        return result

    def _collect(self, chan: paramiko.Channel, t: paramiko.Transport, deadline: float,
                 what: str) -> tuple[bytes, bytes]:
        out, err = bytearray(), bytearray()
        pid: int | None = None
        nap = 0.001
        while True:
            got = False
            while chan.recv_ready():
                chunk = chan.recv(1 << 16)
                got = True
                if len(out) < _MAX_OUTPUT:
                    out += chunk
            while chan.recv_stderr_ready():
                chunk = chan.recv_stderr(1 << 16)
                got = True
                if len(err) < _MAX_OUTPUT:
                    err += chunk
            mark = out.find(_PID_MARK) if pid is None else -1
            end = out.find(b"\n", mark) if mark >= 0 else -1
            if end > 0:  # (shell startup files may print before our marker: keep that text)
                pid = int(out[mark + len(_PID_MARK):end])
                del out[mark:end + 1]
            # The server sends all data before exit-status, so once the status is in, the
            # buffers hold everything.
            if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                # No exit status: the channel was closed under the shell, most likely by a
                # dying connection whose transport thread has not caught up yet.
                if chan.exit_status == -1 and self._dropped():
                    raise EOFError("transport closed")
                return bytes(out), bytes(err)
            if not t.is_active():
                raise EOFError("transport closed")
            if time.monotonic() > deadline:
                self._kill_group(pid)
                raise CommandTimeout(f"command timed out on device {self.name!r}: {what}")
            nap = 0.001 if got else min(nap * 2, 0.02)
            time.sleep(nap)

    def _kill_group(self, pid: int | None) -> None:
        if pid is None or not self.connected:
            return
        try:
            self.run(f"kill -9 -{pid} 2>/dev/null || kill -9 {pid} 2>/dev/null; true", timeout=15, check=False)
        except DeviceError as exc:
            log.warning("%s: could not kill timed-out process %d: %s", self.name, pid, exc)

    # -- files ----------------------------------------------------------------------------------
    def _sftp_client(self) -> paramiko.SFTPClient:
        t = self._require()
        if self._sftp is None:
            with self._classify("opening SFTP"):
                try:
                    self._sftp = paramiko.SFTPClient.from_transport(t)
                except paramiko.SSHException as exc:
                    if not t.is_active():
                        raise
                    raise DeviceError(f"device {self.name!r} offers no SFTP ({exc}); enable the sftp "
                                      "Subsystem in its sshd_config") from None
            assert self._sftp is not None
            self._sftp.get_channel().settimeout(max(self.connect_timeout, 30.0))
        return self._sftp

    def upload(self, local: str | Path, remote: str, mode: int | None = None) -> None:
        sftp = self._sftp_client()
        with self._classify(f"uploading {Path(local).name}"):
            sftp.put(str(local), remote)
            if mode is not None:
                sftp.chmod(remote, mode)
        log.debug("%s: uploaded %s -> %s", self.name, local, remote)

    def fetch(self, remote: str, local: str | Path) -> None:
        sftp = self._sftp_client()
        with self._classify(f"fetching {remote}"):
            # No prefetch: it reads in a helper thread of paramiko's, which a dying device kills
            # with a traceback on stderr; outputs are small.
            sftp.get(remote, str(local), prefetch=False)

    @contextlib.contextmanager
    def run_dir(self) -> Iterator[str]:
        """A fresh temp directory on the device for one run; removed afterwards (best effort
        when the connection is gone)."""
        base = shlex.quote(self.entry.remote_tmp) if self.entry.remote_tmp else '"${TMPDIR:-/tmp}"'
        res = self.run(f"mktemp -d {base}/edgec-run.XXXXXX", timeout=30)
        path = res.text.strip()
        if not path.startswith("/") or "edgec-run." not in path:
            raise DeviceError(f"device {self.name!r}: mktemp returned {path!r}")
        try:
            yield path
        finally:
            try:
                if self.connected:
                    self.run(["rm", "-rf", "--", path], timeout=60, check=False)
            except DeviceError as exc:
                log.warning("%s: could not remove %s: %s", self.name, path, exc)

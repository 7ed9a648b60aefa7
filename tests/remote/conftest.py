"""A real OpenSSH server on 127.0.0.1 used as the "device" (Debian `openssh-server`).

Each test session (each xdist worker) starts its own `sshd -D` on a free non-standard port with
a throwaway host key and user key, its own sshd_config (key auth only, internal-sftp) and an
empty HOME for the sessions (not root's dotfiles), and kills it at the end. x86 binaries run natively on it; aarch64 ones through qemu-aarch64.
Skipped with a reason where that cannot work: not root (sshd must switch users) or no sshd.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgec.device import DeviceEntry

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (connection refused): the "dead host"."""
    return free_port()


def keygen(path: Path, kind: str = "ed25519") -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "edgec-test", "-f", str(path)],
                   check=True, capture_output=True)
    return path


@dataclass
class SSHServer:
    """One sshd instance; `start`/`kill` so fault tests can drop and restore the device."""

    root: Path
    port: int
    host_key: Path
    user_key: Path
    proc: subprocess.Popen | None = None

    @property
    def host_pub(self) -> str:
        return Path(f"{self.host_key}.pub").read_text().split()[1]

    @property
    def home(self) -> Path:
        """HOME of the device's sessions: an empty throwaway directory."""
        return self.root / "home"

    def start(self, timeout: float = 10.0) -> None:
        cfg = self.root / "sshd_config"
        self.home.mkdir(exist_ok=True)
        # The device's shell gets its own empty HOME: bash run by sshd sources ~/.bashrc, and this
        # machine's root dotfiles (pyenv init: a rehash that takes a lock file in the shared
        # ~/.pyenv/shims) would run in every command. A device killed mid-rehash (the fault
        # tests SIGKILL it) left that lock behind, and every later command then waited for it
        # past its timeout: a clean, fast device instead, like a fresh board.
        cfg.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.host_key}",
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}", "StrictModes no", "PidFile none",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
            "PermitRootLogin prohibit-password", "Subsystem sftp internal-sftp", "LogLevel VERBOSE",
            "MaxStartups 50", "MaxSessions 50", f'SetEnv HOME="{self.home}"', ""]))
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        log = (self.root / "sshd.log").open("ab")
        # A root sshd on loopback with a throwaway host key, plus our own config file so the
        # system's sshd_config (PAM, Include, Subsystem path) cannot change the test.
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(cfg), "-p", str(self.port), "-h", str(self.host_key),
             "-o", "ListenAddress=127.0.0.1", "-o", f"AuthorizedKeysFile={self.root / 'authorized_keys'}",
             "-o", "StrictModes=no", "-o", "PidFile=none"],
            stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.root / 'sshd.log').read_text()[-1000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd did not start")

    def kill(self) -> None:
        """SIGKILL the listener and every per-connection sshd it forked (found by parent pid:
        they run in their own sessions), which drops live connections like a crash would.

        Everything is frozen (SIGSTOP) before anything is killed: a stopped listener cannot
        accept, nor a stopped session fork, so a client reconnecting the moment its connection
        drops cannot land on a process forked after the list was taken (which then outlived
        the "dead" device and served the rest of the run)."""
        if self.proc is None:
            return
        root = self.proc.pid
        frozen: list[int] = []
        self._signal(root, signal.SIGSTOP)
        while True:
            new = [p for p in self._descendants(root) if p not in frozen]
            if not new:
                break
            for pid in new:
                self._signal(pid, signal.SIGSTOP)
            frozen += new
        for pid in [root, *frozen]:
            self._signal(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    @staticmethod
    def _descendants(root: int) -> list[int]:
        children: dict[int, list[int]] = {}
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(d.name))
        out, todo = [], [root]
        while todo:
            for c in children.get(todo.pop(), []):
                out.append(c)
                todo.append(c)
        return out


class ResetProxy:
    """A TCP forwarder from 127.0.0.1:`port` to the sshd on `target`, whose `crash()` aborts
    every live connection with a TCP reset and stops listening: a device whose network stack
    died mid-connection. (Killing sshd alone mostly closes connections cleanly, and paramiko's
    transport thread reports a clean close quietly; a reset makes it log "Socket exception:
    Connection reset by peer" every time.) `start()` listens again on the same port.

    One thread does everything (select loop), so closing a socket with SO_LINGER 0 is its last
    reference and the kernel sends the reset at once."""

    def __init__(self, target: int):
        self.target = target
        self.port = free_port()
        self._thread: threading.Thread | None = None
        self._crash = threading.Event()
        self._hold = threading.Event()

    def start(self) -> None:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(16)
        self._crash.clear()
        self._hold.clear()
        self._thread = threading.Thread(target=self._loop, args=(ls,), daemon=True, name="reset-proxy")
        self._thread.start()

    def hold(self) -> None:
        """Stop forwarding (the connections stay open): a transfer seen in flight cannot finish
        before `crash()` (a 48 MB fetch over loopback sometimes did, on a busy machine)."""
        self._hold.set()

    def crash(self) -> None:
        if self._thread is not None:
            self._crash.set()
            self._thread.join(10)
            self._thread = None

    def _loop(self, ls: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        sel.register(ls, selectors.EVENT_READ)
        peer: dict[socket.socket, socket.socket] = {}

        def drop(a: socket.socket) -> None:
            b = peer.pop(a)
            peer.pop(b, None)
            for x in (a, b):
                sel.unregister(x)
                x.close()

        try:
            while not self._crash.is_set():
                if self._hold.is_set():
                    time.sleep(0.005)
                    continue
                for key, _ in sel.select(timeout=0.02):
                    s = key.fileobj
                    if s is ls:
                        client, _ = ls.accept()
                        try:
                            up = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                        except OSError:
                            client.close()
                            continue
                        up.settimeout(None)
                        peer[client], peer[up] = up, client
                        sel.register(client, selectors.EVENT_READ)
                        sel.register(up, selectors.EVENT_READ)
                    elif s in peer:
                        try:
                            data = s.recv(1 << 16)
                            if data:
                                peer[s].sendall(data)
                                continue
                        except OSError:
                            pass
                        drop(s)  # one side closed: close both
        finally:
            for x in peer:
                with contextlib.suppress(OSError):
                    x.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                x.close()
            ls.close()
            sel.close()


def make_server(root: Path) -> SSHServer:
    root.mkdir(parents=True, exist_ok=True)
    host_key = keygen(root / "ssh_host_ed25519_key")
    user_key = keygen(root / "id_ed25519")
    (root / "authorized_keys").write_text(Path(f"{user_key}.pub").read_text())
    return SSHServer(root, free_port(), host_key, user_key)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    if SSHD is None:
        pytest.skip("sshd not installed (apt-get install openssh-server)")
    if os.geteuid() != 0:
        pytest.skip("the loopback sshd fixture needs root (sshd must run as root to log users in)")
    server = make_server(tmp_path_factory.mktemp("sshd"))
    server.start()
    yield server
    server.kill()


@pytest.fixture()
def edgec_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Isolated config dir and known_hosts, and no ssh-agent: tests see only their own keys."""
    env = {"EDGEC_CONFIG_DIR": str(tmp_path / "config"), "EDGEC_KNOWN_HOSTS": str(tmp_path / "known_hosts")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return env


# -- helpers shared by the remote tests ------------------------------------------------------------
@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def cli(*args: str, env: dict | None = None, subprocess_: bool = False, timeout: float = 180) -> CliResult:
    """Run `edgec ARGS`: in-process through edgec.cli.main (same exit codes and output, no
    interpreter start-up), or as a real subprocess."""
    if subprocess_:
        p = subprocess.run([sys.executable, "-m", "edgec.cli", *args], capture_output=True, text=True,
                           env={**os.environ, **(env or {})}, timeout=timeout)
        return CliResult(p.returncode, p.stdout, p.stderr)
    from edgec import cli as edgec_cli

    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_argv = dict(os.environ), sys.argv
    # main() sets process-wide state for the CLI process (thread and unraisable hooks, paramiko's
    # and edgec.device's loggers): put it back, so the rest of the test session is not affected.
    saved_hooks = threading.excepthook, sys.unraisablehook
    loggers = [logging.getLogger(n) for n in ("paramiko", "edgec.device")]
    saved_logging = [(lg.level, list(lg.handlers)) for lg in loggers]
    os.environ.update(env or {})
    sys.argv = ["edgec", *args]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                edgec_cli.main()
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
        threading.excepthook, sys.unraisablehook = saved_hooks
        for lg, (level, handlers) in zip(loggers, saved_logging):
            lg.setLevel(level)
            lg.handlers[:] = handlers
    return CliResult(code, out.getvalue(), err.getvalue())


def assert_clean(proc: CliResult, code: int, *needles: str) -> None:
    """Exit code as expected, no traceback anywhere, and each needle in stderr."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    text = " ".join(proc.stderr.split())  # rich may wrap long lines
    for n in needles:
        assert n in text, f"{n!r} not in {proc.stderr!r}"


def trust(server: SSHServer, known_hosts: str | Path, port: int | None = None) -> None:
    """Record the server's host key as if the user had verified it (for `port`: a proxy's)."""
    with open(known_hosts, "a") as f:
        f.write(f"[127.0.0.1]:{port or server.port} ssh-ed25519 {server.host_pub}\n")


def entry(server: SSHServer, name: str = "loop", **kw: object) -> DeviceEntry:
    fields = {"host": "127.0.0.1", "user": "root", "profile": "host", "port": server.port,
              "key": str(server.user_key), **kw}
    return DeviceEntry(name=name, **fields)  # type: ignore[arg-type]

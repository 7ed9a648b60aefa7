"""A real OpenSSH server on 127.0.0.1 used as the "device" (Debian `openssh-server`).

Each test session (each xdist worker) starts its own `sshd -D` on a free non-standard port with
a throwaway host key and user key and its own sshd_config (key auth only, internal-sftp), and
kills it at the end. x86 binaries run natively on it; aarch64 ones through qemu-aarch64.
Skipped with a reason where that cannot work: not root (sshd must switch users) or no sshd.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
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

    def start(self, timeout: float = 10.0) -> None:
        cfg = self.root / "sshd_config"
        cfg.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.host_key}",
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}", "StrictModes no", "PidFile none",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
            "PermitRootLogin prohibit-password", "Subsystem sftp internal-sftp", "LogLevel VERBOSE",
            "MaxStartups 50", "MaxSessions 50", ""]))
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        log = (self.root / "sshd.log").open("ab")
        # The DESIGN.md recipe, plus our own config file so the system's sshd_config (PAM,
        # Include, Subsystem path) cannot change the test.
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
        they run in their own sessions), which drops live connections like a crash would."""
        if self.proc is None:
            return
        for pid in self._descendants(self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc = None

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
    return CliResult(code, out.getvalue(), err.getvalue())


def assert_clean(proc: CliResult, code: int, *needles: str) -> None:
    """Exit code as expected, no traceback anywhere, and each needle in stderr."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    text = " ".join(proc.stderr.split())  # rich may wrap long lines
    for n in needles:
        assert n in text, f"{n!r} not in {proc.stderr!r}"


def trust(server: SSHServer, known_hosts: str | Path) -> None:
    """Record the server's host key as if the user had verified it."""
    with open(known_hosts, "a") as f:
        f.write(f"[127.0.0.1]:{server.port} ssh-ed25519 {server.host_pub}\n")


def entry(server: SSHServer, name: str = "loop", **kw: object) -> DeviceEntry:
    fields = {"host": "127.0.0.1", "user": "root", "profile": "host", "port": server.port,
              "key": str(server.user_key), **kw}
    return DeviceEntry(name=name, **fields)  # type: ignore[arg-type]

"""Device registry, SSH security (host keys, auth), commands, files and reconnects against a real
sshd on 127.0.0.1 (see conftest.py)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edgec.device import (
    AuthError,
    CommandTimeout,
    Device,
    DeviceEntry,
    DeviceLost,
    HostKeyError,
    RemoteCommandError,
    add_device,
    get_device,
    load_devices,
    registry_path,
    remove_device,
)
from edgec.device.check import parse_cpuinfo, required_features
from edgec.errors import DeviceError
from edgec.targets import get_profile
from tests.remote.conftest import (
    ResetProxy,
    SSHServer,
    assert_clean,
    cli,
    closed_port,
    entry,
    keygen,
    make_server,
    trust,
)


def secret_lines(key: Path) -> list[str]:
    """The base64 body of a private key file: none of it may appear in any output."""
    return [ln for ln in key.read_text().splitlines() if ln and not ln.startswith("-----")]


# -- registry ----------------------------------------------------------------------------------------
def test_registry_roundtrip_and_validation(edgec_env: dict, tmp_path: Path) -> None:
    key = keygen(tmp_path / "k")
    e = DeviceEntry("pi4", "192.0.2.10", "pi", "rpi4", key=str(key), exec_wrapper="qemu-aarch64 -cpu max")
    add_device(e)
    assert registry_path() == Path(edgec_env["EDGEC_CONFIG_DIR"]) / "devices.toml"
    got = get_device("pi4")
    assert got == e and got.wrapper_argv == ["qemu-aarch64", "-cpu", "max"] and got.port == 22
    assert "BEGIN" not in registry_path().read_text()  # a key path, never key contents
    with pytest.raises(DeviceError, match="already exists"):
        add_device(e)
    add_device(DeviceEntry("pi4", "192.0.2.11", "pi", "rpi4"), replace=True)
    assert get_device("pi4").host == "192.0.2.11" and get_device("pi4").key == ""
    bad = [(dict(profile="nope"), "unknown device 'nope'"), (dict(name="a b"), "device name"),
           (dict(key=str(key) + ".pub"), "not the .pub"), (dict(key=str(tmp_path / "missing")), "no such file"),
           (dict(port=70000), "out of range"), (dict(host="-oProxyCommand=x"), "invalid host"),
           (dict(exec_wrapper="qemu 'unterminated"), "--exec-wrapper")]
    for change, msg in bad:
        with pytest.raises(DeviceError, match=msg):
            add_device(DeviceEntry(**{**e.to_json(), "name": "x", **change}))
    assert remove_device("pi4").name == "pi4" and load_devices() == {}
    with pytest.raises(DeviceError, match="no registered device"):
        remove_device("pi4")
    registry_path().write_text("[devices.x\nhost=")
    with pytest.raises(DeviceError, match="not valid TOML"):
        load_devices()


def test_profile_fit_rules() -> None:
    assert required_features(get_profile("rpi4"), "aarch64") == {"crc": "crc32", "fp-armv8": "fp", "neon": "asimd"}
    assert required_features(get_profile("rpi3"), "armv7") == {"neon": "neon", "vfp4": "vfpv4"}
    assert set(required_features(get_profile("x86_64-avx512"), "x86_64").values()) >= {"avx512f", "avx512_vnni"}
    pi4 = "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU part\t: 0xd08\n" \
          "Model\t\t: Raspberry Pi 4 Model B Rev 1.4\n"
    assert parse_cpuinfo(pi4) == ("cortex-a72, Raspberry Pi 4 Model B Rev 1.4", ["asimd", "cpuid", "crc32", "evtstrm", "fp"])


# -- CLI: add / list / check / remove ----------------------------------------------------------------
def test_cli_add_list_check_remove(sshd: SSHServer, edgec_env: dict) -> None:
    kh = Path(edgec_env["EDGEC_KNOWN_HOSTS"])
    common = ["--host", "127.0.0.1", "--port", str(sshd.port), "--user", "root", "--key", str(sshd.user_key)]
    proc = cli("devices", "add", "loop", *common, "--profile", "host", "--trust-new-host")
    assert_clean(proc, 0, "added device 'loop'", "SHA256:")
    assert f"[127.0.0.1]:{sshd.port} ssh-ed25519 {sshd.host_pub}" in kh.read_text()
    assert_clean(cli("devices", "add", "qpi", *common, "--profile", "rpi4", "--exec-wrapper", "qemu-aarch64"), 0)
    assert_clean(cli("devices", "add", "badpi", *common, "--profile", "rpi4"), 0)
    listed = json.loads(cli("devices", "list", "--registered", "--json").stdout)
    assert [d["name"] for d in listed] == ["badpi", "loop", "qpi"]
    assert "loop" in cli("devices", "list").stdout  # profiles table, then registered devices

    proc = cli("devices", "check", "loop", "--json")
    assert_clean(proc, 0)
    rep = json.loads(proc.stdout)
    assert rep["fits"] and rep["arch"] == "x86_64" and rep["uname"].startswith("Linux")
    assert rep["cores"] >= 1 and "sse2" in rep["features"] and rep["cpu"]
    assert set(rep["required_features"]) <= set(rep["features"]) and rep["host_key"].startswith("ssh-ed25519 SHA256:")
    proc = cli("devices", "check", "qpi")  # x86 machine running aarch64 binaries through qemu
    assert_clean(proc, 0)
    assert "qemu-aarch64" in proc.stdout and "yes" in proc.stdout
    proc = cli("devices", "check", "badpi", "--json")  # rpi4 profile on an x86 box, no wrapper
    assert proc.returncode == 1, proc.stderr
    rep = json.loads(proc.stdout)
    assert not rep["fits"] and "profile rpi4 builds aarch64" in rep["problems"][0]

    assert_clean(cli("devices", "remove", "loop"), 0, "removed device 'loop'")
    assert_clean(cli("devices", "check", "loop"), 2, "no registered device 'loop'")
    assert_clean(cli("devices", "remove", "loop"), 2, "no registered device 'loop'")


# -- host keys ---------------------------------------------------------------------------------------
def test_unknown_host_refused_then_recorded(sshd: SSHServer, edgec_env: dict) -> None:
    kh = Path(edgec_env["EDGEC_KNOWN_HOSTS"])
    add_device(entry(sshd))
    proc = cli("devices", "check", "loop")
    assert_clean(proc, 2, "unknown host", f"[127.0.0.1]:{sshd.port}", "--trust-new-host", "SHA256:")
    assert not kh.exists()  # refused: nothing recorded
    assert_clean(cli("devices", "check", "loop", "--trust-new-host"), 0)
    assert kh.read_text() == f"[127.0.0.1]:{sshd.port} ssh-ed25519 {sshd.host_pub}\n"
    assert_clean(cli("devices", "check", "loop"), 0)  # now known
    assert kh.read_text().count("\n") == 1  # not recorded twice


def test_host_key_mismatch_refused(sshd: SSHServer, edgec_env: dict, tmp_path: Path) -> None:
    other = keygen(tmp_path / "impostor_host_key")
    kh = Path(edgec_env["EDGEC_KNOWN_HOSTS"])
    kh.write_text(f"[127.0.0.1]:{sshd.port} ssh-ed25519 {Path(f'{other}.pub').read_text().split()[1]}\n")
    before = kh.read_text()
    add_device(entry(sshd))
    for extra in ([], ["--trust-new-host"]):  # trusting *new* hosts never overrides a changed key
        proc = cli("devices", "check", "loop", *extra)
        assert_clean(proc, 2, "HOST KEY MISMATCH", "ssh-keygen -R")
    assert kh.read_text() == before
    with pytest.raises(HostKeyError):
        Device(get_device("loop"), trust_new_host=True, attempts=3).connect()


# -- authentication ----------------------------------------------------------------------------------
def test_wrong_key_fails_cleanly(sshd: SSHServer, edgec_env: dict, tmp_path: Path) -> None:
    wrong = keygen(tmp_path / "id_wrong")
    trust(sshd, edgec_env["EDGEC_KNOWN_HOSTS"])
    add_device(entry(sshd, key=str(wrong)))
    t0 = time.monotonic()
    proc = cli("devices", "check", "loop", env={"EDGEC_LOG": "debug"})
    assert_clean(proc, 2, "authentication as root@127.0.0.1", "failed", str(wrong), "authorized_keys")
    assert time.monotonic() - t0 < 30
    for line in secret_lines(wrong):
        assert line not in proc.stderr + proc.stdout
    with pytest.raises(AuthError):
        Device(get_device("loop")).connect()


def test_agent_and_passphrase_keys(sshd: SSHServer, edgec_env: dict, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """No --key: the ssh-agent's key is used. A passphrase-protected --key is refused with a
    clear hint until it is loaded in the agent; edgec itself never takes a passphrase."""
    trust(sshd, edgec_env["EDGEC_KNOWN_HOSTS"])
    agent_key = keygen(tmp_path / "id_agent")
    enc = tmp_path / "id_enc"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "s3cret-pass", "-f", str(enc)], check=True)
    with open(sshd.root / "authorized_keys", "a") as f:
        f.write(Path(f"{agent_key}.pub").read_text() + Path(f"{enc}.pub").read_text())
    with pytest.raises(AuthError, match="passphrase-protected and not loaded in ssh-agent"):
        Device(entry(sshd, key=str(enc))).connect()
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        askpass = tmp_path / "askpass.sh"
        askpass.write_text("#!/bin/sh\necho s3cret-pass\n")
        askpass.chmod(0o700)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock), "SSH_ASKPASS": str(askpass),
               "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"}
        for k in (agent_key, enc):
            subprocess.run(["ssh-add", str(k)], env=env, check=True, capture_output=True, stdin=subprocess.DEVNULL)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        with Device(entry(sshd, key="")) as dev:  # agent only
            assert dev.run("echo agent-ok").text == "agent-ok\n"
        with Device(entry(sshd, key=str(enc))) as dev:  # encrypted file -> its twin in the agent
            assert dev.run("echo enc-ok").text == "enc-ok\n"
    finally:
        agent.kill()
        agent.wait()


# -- unreachable -------------------------------------------------------------------------------------
def test_dead_host_fails_cleanly_and_quickly(edgec_env: dict) -> None:
    port = closed_port()
    add_device(DeviceEntry("dead", "127.0.0.1", "root", "host", port=port))
    t0 = time.monotonic()
    with pytest.raises(DeviceLost, match="refused.*gave up after 3 attempt"):
        Device(get_device("dead")).connect()
    assert time.monotonic() - t0 < 3.0  # connection refused: backoff 0.25 s + 0.5 s, no long waits
    proc = cli("devices", "check", "dead", subprocess_=True)  # the real process: exit code 2
    assert_clean(proc, 2, f"cannot connect to root@127.0.0.1:{port}")


# -- commands, files, timeouts -----------------------------------------------------------------------
def _alive(marker: str) -> bool:
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and marker in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                return True
        except OSError:
            continue
    return False


def test_run_upload_fetch_timeout(sshd: SSHServer, edgec_env: dict, tmp_path: Path) -> None:
    trust(sshd, edgec_env["EDGEC_KNOWN_HOSTS"])
    src = tmp_path / "payload.bin"
    src.write_bytes(os.urandom(300_000))
    with Device(entry(sshd)) as dev:
        r = dev.run(["sh", "-c", "echo out; echo err >&2; exit 3"], check=False)
        assert (r.exit_code, r.text, r.stderr) == (3, "out\n", b"err\n")
        with pytest.raises(RemoteCommandError, match="exit 3"):
            dev.run("exit 3")
        with dev.run_dir() as rdir:
            assert rdir.startswith("/tmp/edgec-run.")
            dev.upload(src, f"{rdir}/p.bin", mode=0o640)
            dev.fetch(f"{rdir}/p.bin", tmp_path / "back.bin")
            assert dev.run(["stat", "-c", "%a", f"{rdir}/p.bin"]).text.strip() == "640"
        assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
        assert not Path(rdir).exists()  # the device is this machine: cleaned up

        # The whole process group dies on timeout, including background children.
        marker = "31.4159"
        t0 = time.monotonic()
        with pytest.raises(CommandTimeout, match="timed out"):
            dev.run(f"sleep {marker} & sleep {marker}; wait", timeout=1.0)
        assert time.monotonic() - t0 < 10
        time.sleep(0.2)
        assert not _alive(f"sleep {marker}")
        assert dev.run("echo still-usable").text == "still-usable\n"


def test_device_lost_and_reconnect_with_backoff(edgec_env: dict, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for sshd")
    server = make_server(tmp_path / "srv")
    server.start()
    try:
        trust(server, edgec_env["EDGEC_KNOWN_HOSTS"])
        dev = Device(entry(server), attempts=8, backoff_s=0.1, max_backoff_s=0.5).connect()
        errors: list[BaseException] = []

        def long_command() -> None:
            try:
                dev.run("sleep 20", timeout=60)
            except BaseException as exc:  # noqa: BLE001 - collected for the assert below
                errors.append(exc)

        th = threading.Thread(target=long_command)
        th.start()
        time.sleep(1.0)
        t0 = time.monotonic()
        server.kill()  # the device "crashes" mid-command
        th.join(30)
        assert errors and isinstance(errors[0], DeviceLost), errors
        assert "was lost" in str(errors[0]) and time.monotonic() - t0 < 10
        assert not dev.connected
        # Comes back after a while: reconnect() keeps retrying with backoff until it does.
        threading.Timer(0.8, server.start).start()
        t1 = time.monotonic()
        dev.reconnect()
        assert time.monotonic() - t1 >= 0.5
        assert dev.run("echo back").text == "back\n"
        dev.close()
        server.kill()
        with pytest.raises(DeviceLost, match="gave up after 8 attempt"):
            dev.connect()
    finally:
        server.kill()


def test_connection_reset_is_device_lost_and_kills_no_thread(sshd: SSHServer, edgec_env: dict, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection is reset (ResetProxy) mid-command, mid-upload and mid-fetch: DeviceLost
    every time (not a DeviceError that blames the command or file: the caller's read can fail
    before paramiko's transport thread has seen the reset), and no thread dies of it (the SFTP
    prefetch thread did, printing a traceback). paramiko does log the reset: the CLI keeps that
    from its user (test_cli_thread_and_paramiko_noise, tests/tune/test_tune_remote.py)."""
    caplog.set_level(logging.DEBUG, logger="paramiko")
    died: list[str] = []
    monkeypatch.setattr(threading, "excepthook", lambda a: died.append(f"{a.thread.name}: {a.exc_type.__name__}"))
    proxy = ResetProxy(sshd.port)
    trust(sshd, edgec_env["EDGEC_KNOWN_HOSTS"], port=proxy.port)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(48 << 20))
    remote_up, remote_big, local_back = tmp_path / "up.bin", tmp_path / "remote-big.bin", tmp_path / "back.bin"
    remote_big.write_bytes(big.read_bytes())  # the device is this machine

    def started(path: Path) -> bool:
        return path.is_file() and path.stat().st_size > 0

    ops = {"run": (lambda d: d.run("sleep 30", timeout=60), lambda: time.sleep(0.5) or True),
           "upload": (lambda d: d.upload(big, str(remote_up)), lambda: started(remote_up)),
           "fetch": (lambda d: d.fetch(str(remote_big), local_back), lambda: started(local_back))}
    for name, (op, in_flight) in ops.items():
        proxy.start()
        dev = Device(entry(sshd, port=proxy.port), attempts=1).connect()
        caplog.clear()
        errors: list[BaseException] = []

        def work(op=op, dev=dev, errors=errors) -> None:  # noqa: ANN001
            try:
                op(dev)
            except BaseException as exc:  # noqa: BLE001 - collected for the assert below
                errors.append(exc)

        th = threading.Thread(target=work)
        th.start()
        deadline = time.monotonic() + 30
        while not in_flight() and th.is_alive() and time.monotonic() < deadline:
            time.sleep(0.002)
        proxy.hold()  # nothing more goes through: the operation cannot finish before the reset
        assert th.is_alive(), f"{name} finished before the reset"
        proxy.crash()
        th.join(30)
        assert len(errors) == 1 and isinstance(errors[0], DeviceLost), (name, errors)
        assert "was lost during" in str(errors[0]) and not dev.connected
        if name == "run":  # the client was idle: paramiko's transport thread met the reset
            assert any("Socket exception" in r.getMessage() and r.levelno == logging.ERROR
                       for r in caplog.records), [r.getMessage() for r in caplog.records]
        dev.close()
    assert not died


QUIET_SNIPPET = """
import logging, threading
import paramiko
import edgec.device.ssh  # (gives paramiko's logger its NullHandler, as in a real run)
from edgec import cli

cli._quiet_thread_tracebacks()

def boom(exc):
    def f():
        raise exc
    t = threading.Thread(target=f, name=f"t-{type(exc).__name__}")
    t.start()
    t.join()

# what a dying device does: paramiko logs the reset, its helper threads die of the drop
try:
    raise ConnectionResetError(104, "Connection reset by peer")
except OSError:
    logging.getLogger("paramiko.transport").error("Socket exception: Connection reset by peer (104)",
                                                  exc_info=True)
for exc in (EOFError(), ConnectionResetError(104, "Connection reset by peer"), OSError("Socket is closed"),
            paramiko.SSHException("Server connection dropped: "), TimeoutError()):
    boom(exc)
# a real bug in a thread
boom(ValueError("a real bug\\nsecond line"))

class Closing:  # like paramiko's SFTPFile: __del__ closes over a connection that may be gone
    def __init__(self, exc):
        self.exc = exc
    def __del__(self):
        raise self.exc

Closing(EOFError())
Closing(KeyError("a real bug in a finalizer"))
print("done")
"""


def test_cli_thread_and_paramiko_noise(tmp_path: Path) -> None:
    """The CLI's process-wide settings: a dropped connection's noise (paramiko's log records,
    threads or finalizers ended by connection errors) never reaches stderr; any other exception
    ending a thread or escaping a finalizer is one line; EDGEC_DEBUG=1 shows all of it,
    tracebacks included."""
    env = {k: v for k, v in os.environ.items() if k not in ("EDGEC_DEBUG", "EDGEC_LOG")}
    p = subprocess.run([sys.executable, "-c", QUIET_SNIPPET], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0 and p.stdout == "done\n", p.stderr
    lines = p.stderr.splitlines()
    assert lines == ["error: thread t-ValueError failed: ValueError: a real bug second line (set EDGEC_DEBUG=1 "
                     "for the traceback)",
                     "error: Exception ignored in Closing.__del__: KeyError: 'a real bug in a finalizer' (set EDGEC_DEBUG=1 "
                     "for the traceback)"], p.stderr
    p = subprocess.run([sys.executable, "-c", QUIET_SNIPPET], capture_output=True, text=True,
                       env={**env, "EDGEC_DEBUG": "1"}, timeout=60)
    assert p.returncode == 0 and p.stdout == "done\n", p.stderr
    for needle in ("Socket exception: Connection reset by peer", "Traceback", "ValueError: a real bug",
                   "EOFError", "Server connection dropped", "a real bug in a finalizer"):
        assert needle in p.stderr, (needle, p.stderr)

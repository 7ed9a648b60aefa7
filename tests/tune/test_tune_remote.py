"""Tuning on the loopback sshd device (a real OpenSSH server, x86 binaries run natively),
with the fault of issue 7: the device dies in the middle of a run. The run records
`device_lost` for what was in flight, retires the device and stops with a clear message (one
line: no traceback, nothing from paramiko); after the device is back, `--resume` finishes: no
measurement lost or repeated (lines counted)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from edgec.device import add_device
from edgec.tune.log import read_log
from tests.remote.conftest import SSHD, ResetProxy, assert_clean, cli, entry, make_server, trust

pytestmark = pytest.mark.skipif(SSHD is None or os.geteuid() != 0,
                                reason="needs sshd (openssh-server) and root, like tests/remote")


def _lines(p: Path) -> int:
    return len(p.read_text().splitlines()) if p.is_file() else 0


# What must not reach a CLI user when a device dies: tracebacks (of any thread, or printed by
# the garbage collector), paramiko's log records.
NOISE = ("Traceback", "Socket exception", "Exception in thread", "Exception ignored", "paramiko")


def assert_quiet(stderr: str) -> None:
    for n in NOISE:
        assert n not in stderr, stderr


def test_device_lost_mid_run_then_resume(tmp_path: Path, edgec_env: dict, small_model_path: Path) -> None:
    """The CLI in a subprocess; the device (reached through a ResetProxy) dies mid-run: its
    connections are reset, which makes paramiko's transport thread log "Socket exception:
    Connection reset by peer" (tests/remote/test_devices.py checks it does), and its sshd is
    killed. stderr has the one-line message and nothing else."""
    server = make_server(tmp_path / "sshd")
    server.start()
    proxy = ResetProxy(server.port)
    proxy.start()
    try:
        trust(server, edgec_env["EDGEC_KNOWN_HOSTS"], port=proxy.port)
        add_device(entry(server, "loop", port=proxy.port))
        log = tmp_path / "tune.jsonl"
        # Enough trials that the kill (after 4 lines) lands mid-run even on a fast, quiet machine.
        args = ["tune", str(small_model_path), "--device", "loop", "--log", str(log), "--trials", "14",
                "--batch", "3", "--min-time", "0.01"]
        proc = subprocess.Popen([sys.executable, "-m", "edgec.cli", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while _lines(log) < 4 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proxy.crash()  # the device dies: live connections reset, nothing listens
        server.kill()
        _, stderr = proc.communicate(timeout=120)
        assert _lines(log) < 28, "the run finished before the device was killed"
        assert proc.returncode == 1, stderr
        assert "device lost" in stderr and "--resume" in " ".join(stderr.split()), stderr
        assert_quiet(stderr)
        first = read_log(log)
        lost = [r for r in first if r["result"]["error"] == "device_lost"]
        assert lost and all(r["device"] == "loop" or r["device"] == "build" for r in first)
        assert len(first) < 28

        server.start()  # the device is back (same host key and port)
        proxy.start()
        assert_clean(cli(*args, "--resume", "--report"), 0, "best vs default")
        final = read_log(log)
        assert _lines(log) == len(final)
        assert [r["config"] for r in final[:len(first)]] == [r["config"] for r in first]  # append-only
        real = [r for r in final if r["result"]["error"] != "device_lost"]
        per_config = Counter((r["task"]["kernel"], r["config"]["index"]) for r in real)
        assert max(per_config.values()) == 1  # nothing measured twice
        # the dying device is never blamed on a config (no runtime/timeout/wrong answer)
        assert {r["result"]["error"] for r in final} <= {None, "device_lost"}
        assert Counter(r["task"]["kernel"] for r in real) == {"gemv": 14, "conv2d": 14}  # nothing lost
        assert len(final) == len(real) + len(lost)  # the resume lost nothing more
        assert all(r["device"] in ("loop", "build") for r in real)
    finally:
        proxy.crash()
        server.kill()


def test_pool_requeues_to_another_device(tmp_path: Path, edgec_env: dict, small_model_path: Path) -> None:
    """A pool of the sshd device and this machine: the sshd dies mid-run, its device is
    retired and its unmeasured configs are measured by the other device; nothing is lost."""
    import threading

    from edgec.device import Device
    from edgec.tune.measure import LocalRunner, MeasureOptions, SSHRunner
    from edgec.tune.tuner import TuneOptions, tune

    server = make_server(tmp_path / "sshd")
    server.start()
    try:
        trust(server, edgec_env["EDGEC_KNOWN_HOSTS"])
        log = tmp_path / "pool.jsonl"
        killed = threading.Event()

        def watch() -> None:
            deadline = time.monotonic() + 120
            while _lines(log) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            server.kill()
            killed.set()

        threading.Thread(target=watch, daemon=True).start()
        runners = [SSHRunner(Device(entry(server, "loop"), attempts=2, backoff_s=0.05)), LocalRunner()]
        opts = TuneOptions(trials=6, batch=4, measure=MeasureOptions(min_time_s=0.01))
        reports = tune(small_model_path, runners, log, "host", opts)
        assert killed.wait(30)
        recs = read_log(log)
        assert {r["result"]["error"] for r in recs} == {None}  # re-queued: not lost, not blamed
        assert Counter(r["task"]["kernel"] for r in recs) == {"gemv": 6, "conv2d": 6}
        assert max(Counter((r["task"]["kernel"], r["config"]["index"]) for r in recs).values()) == 1
        assert {r["device"] for r in recs[-3:]} <= {"local", "build"}  # the survivor finished the run
        assert all(r.trials == 6 for r in reports)
    finally:
        server.kill()

"""`edgec bench --profile` (docs/profiling.md): the per-layer table, the Chrome trace and the
JSON layers, on this machine (x86-64 rdtsc), under qemu-aarch64 (cntvct_el0) and on the
loopback sshd device, where the table comes back from the device in the harness's output."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

import edgec
from edgec.device import Device, add_device
from edgec.device.bench import BenchOptions, bench, open_bundle
from tests.remote.conftest import SSHServer, assert_clean, cli, entry, trust
from tests.runtime.conv_net import CONV_MACS, conv_net

LAYER_KEYS = {"name", "op", "shape", "macs", "us", "mac_per_cycle", "peak_fraction"}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("profile-bench")
    onnx.save(conv_net(), root / "net.onnx")
    return {"onnx": root / "net.onnx",
            "rpi4": edgec.build(conv_net(), device="rpi4", out_dir=root / "rpi4", profile=True).path,
            "plain": edgec.build(conv_net(), device="host", out_dir=root / "plain").path}


def check_layers(doc: dict, runs: int) -> None:
    layers = doc["layers"]
    assert layers and all(LAYER_KEYS <= set(x) for x in layers)
    assert all(x["calls"] == runs for x in layers)
    macs: dict[str, int] = {}
    for x in layers:
        macs[x["name"]] = macs.get(x["name"], 0) + x["macs"]
    assert {k: v for k, v in macs.items() if v} == CONV_MACS
    assert doc["total_us"] == pytest.approx(sum(x["us"] for x in layers)) and doc["total_us"] > 0
    # the kernels' time is inside each run's wall time (the TSC rate is a 20 ms calibration: 0.1%)
    assert doc["total_us"] <= doc["mean_us"] * 1.001, (doc["total_us"], doc["mean_us"])


def test_local_profile_json_trace_and_chart(models: dict[str, Path], tmp_path: Path) -> None:
    """A model path is built with --profile; the trace has one complete event per layer, back to
    back in call order; a chart is written when matplotlib is importable."""
    trace = tmp_path / "t.json"
    proc = cli("bench", str(models["onnx"]), "--local", "--profile", "--runs", "6", "--json", "--trace", str(trace))
    assert_clean(proc, 0)
    doc = json.loads(proc.stdout)
    check_layers(doc, 6)
    assert doc["profile"]["timer"] == "tsc" and doc["profile"]["emulated"] is False
    assert all(x["mac_per_cycle"] is None or x["mac_per_cycle"] > 0 for x in doc["layers"])
    assert any(x["mac_per_cycle"] for x in doc["layers"])  # the TSC gives x86 a clock
    events = json.loads(trace.read_text())["traceEvents"]
    assert len(events) == len(doc["layers"]) and all(e["ph"] == "X" for e in events)
    assert [e["name"] for e in events] == [x["name"] for x in doc["layers"]]
    for a, b in zip(events, events[1:]):
        assert b["ts"] == pytest.approx(a["ts"] + a["dur"], abs=0.01)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert doc["chart"] is None and "no chart" in proc.stderr
    else:
        assert Path(doc["chart"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_aarch64_profile_under_qemu(models: dict[str, Path]) -> None:
    """rpi4 bundle through qemu-aarch64: the virtual counter and cntfrq_el0 work at EL0; no
    MAC/cycle under emulation."""
    res = bench(open_bundle(models["rpi4"]), None, BenchOptions(runs=3, warmup=1, profile=True))
    rep = res.profile
    assert rep["timer"] == "cntvct" and rep["ticks_per_s"] > 0 and rep["emulated"]
    check_layers({**rep, "mean_us": res.stats["mean_us"]}, 3)
    assert all(x["mac_per_cycle"] is None and x["peak_fraction"] is None for x in rep["layers"])


def test_profile_errors(models: dict[str, Path], tmp_path: Path) -> None:
    assert_clean(cli("bench", str(models["plain"]), "--local", "--profile"), 2, "built without --profile")
    assert_clean(cli("bench", str(models["plain"]), "--local", "--trace", "t.json"), 2, "--trace needs --profile")
    assert_clean(cli("bench", str(models["plain"]), "--local", "--profile", "--trace", str(tmp_path / "no" / "t.json")),
                 2, "no such directory")
    assert_clean(cli("build", str(models["onnx"]), "--profile", "--device", "android-arm64", "-o", str(tmp_path / "a")),
                 2, "--profile is not supported for Android/iOS")


def test_cli_build_profile(models: dict[str, Path], tmp_path: Path) -> None:
    """`edgec build --profile` records the option and the layers; `inspect` still reads the bundle."""
    assert_clean(cli("build", str(models["onnx"]), "--profile", "-o", str(tmp_path / "b"), "--json"), 0)
    m = open_bundle(tmp_path / "b").manifest
    assert m["build_options"]["profile"] is True and len(m["profile"]["layers"]) >= 4
    assert_clean(cli("inspect", str(tmp_path / "b")), 0)


def test_ssh_profile_table(sshd: SSHServer, edgec_env: dict, models: dict[str, Path], tmp_path: Path) -> None:
    """Acceptance item 5: `edgec bench --profile` on the loopback device prints the per-layer
    table, from the table the harness printed on the device."""
    trust(sshd, edgec_env["EDGEC_KNOWN_HOSTS"])
    add_device(entry(sshd))
    trace = tmp_path / "loop.json"
    proc = cli("bench", str(models["onnx"]), "--device", "loop", "--profile", "--runs", "4", "--trace", str(trace))
    assert_clean(proc, 0)
    for needle in ("layer", "MAC/cycle", "share %", "conv1", "dw", "pw", "fc", "µs per run in", "timer tsc"):
        assert needle in proc.stdout, (needle, proc.stdout)
    assert len(json.loads(trace.read_text())["traceEvents"]) == len(
        [ln for ln in proc.stdout.splitlines() if ln.startswith("│")]) - 1  # rows minus the summary table's


def test_ssh_aarch64_profile(sshd: SSHServer, edgec_env: dict, models: dict[str, Path]) -> None:
    """The rpi4 bundle on the loopback device through its qemu-aarch64 exec wrapper."""
    trust(sshd, edgec_env["EDGEC_KNOWN_HOSTS"])
    with Device(entry(sshd, profile="rpi4", exec_wrapper="qemu-aarch64")) as dev:
        res = bench(open_bundle(models["rpi4"]), dev, BenchOptions(runs=2, warmup=0, profile=True))
    assert res.profile["timer"] == "cntvct" and res.profile["emulated"]
    assert all(x["calls"] == 2 for x in res.profile["layers"])

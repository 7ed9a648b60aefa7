"""`edgec bench` and the device-side harness: locally (native / qemu-user) and on the loopback
sshd device (x86 natively, aarch64 through the qemu-aarch64 exec wrapper)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper

import edgec
from edgec.device import CommandTimeout, Device, add_device
from edgec.device.bench import (
    BenchOptions,
    bench,
    build_harness,
    checksum,
    harness_inputs,
    open_bundle,
)
from edgec.errors import DeviceError
from tests.helpers import assert_close, make_model, run_onnxruntime
from tests.remote.conftest import SSHServer, assert_clean, cli, entry, trust

STATS = ("min_us", "median_us", "mean_us", "p90_us", "max_us", "runs", "threads", "checksum")
W = np.linspace(-1, 1, 4 * 48, dtype=np.float32).reshape(4, 48)


def add_relu_model() -> onnx.ModelProto:
    """Bit-exact on every target: y = relu(x + w)."""
    return make_model([helper.make_node("Add", ["x", "w"], ["s"]), helper.make_node("Relu", ["s"], ["y"])],
                      [("x", T.FLOAT, [4, 48])], [("y", T.FLOAT, [4, 48])], {"w": W})


def tanh_model() -> onnx.ModelProto:
    return make_model([helper.make_node("Add", ["x", "w"], ["s"]), helper.make_node("Tanh", ["s"], ["t"]),
                       helper.make_node("Relu", ["s"], ["r"])],
                      [("x", T.FLOAT, [4, 48])], [("t", T.FLOAT, [4, 48]), ("r", T.FLOAT, [4, 48])], {"w": W})


def dtypes_model() -> onnx.ModelProto:
    """One input per dtype class the harness generates, each through an exact op."""
    nodes = [helper.make_node("Relu", ["f"], ["of"]), helper.make_node("Abs", ["i"], ["oi"]),
             helper.make_node("Relu", ["h"], ["oh"]), helper.make_node("Not", ["b"], ["ob"]),
             helper.make_node("Add", ["u", "u"], ["ou"])]
    specs = [("f", T.FLOAT, [3, 7]), ("i", T.INT32, [5]), ("h", T.FLOAT16, [2, 9]), ("b", T.BOOL, [6]),
             ("u", T.UINT8, [11])]
    return make_model(nodes, specs, [(f"o{n}", t, s) for n, t, s in specs])


def exact_reference(name: str, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    if name == "add_relu":
        return [np.maximum(inputs["x"] + W, np.float32(0))]
    i = inputs
    return [np.maximum(i["f"], np.float32(0)), np.abs(i["i"]), np.maximum(i["h"], np.float16(0)),
            ~i["b"], (i["u"] + i["u"]).astype(np.uint8)]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bundles")
    models = {"add_relu": add_relu_model(), "tanh": tanh_model()}
    out = {}
    for name, m in models.items():
        onnx.save(m, root / f"{name}.onnx")
        out[f"{name}.onnx"] = root / f"{name}.onnx"
        for dev in ("host", "rpi4"):
            out[f"{name}-{dev}"] = edgec.build(m, device=dev, out_dir=root / f"{name}-{dev}").path
    return out


def check_stats(stats: dict, runs: int) -> None:
    assert all(k in stats for k in STATS), stats
    assert stats["runs"] == runs and stats["threads"] == 1
    assert 0 < stats["min_us"] <= stats["median_us"] <= stats["p90_us"] <= stats["max_us"]
    assert stats["min_us"] <= stats["mean_us"] <= stats["max_us"]


# -- the harness, run locally ------------------------------------------------------------------------
@pytest.mark.parametrize("device", ["host", "rpi4", "rpi3"])
def test_harness_inputs_outputs_checksum(device: str, tmp_path: Path) -> None:
    """The host mirror of the harness's seeded inputs and output checksum is exact for every
    dtype class, on x86-64, aarch64 and 32-bit armv7 (qemu-user)."""
    b = open_bundle(edgec.build(dtypes_model(), device=device, out_dir=tmp_path / "b").path)
    for seed in (0, 12345):
        res = bench(b, None, BenchOptions(runs=3, warmup=1, seed=seed), fetch_outputs=True)
        check_stats(res.stats, 3)
        want = exact_reference("dtypes", harness_inputs(b.manifest, seed))
        for (name, got), ref in zip(res.outputs.items(), want):
            np.testing.assert_array_equal(got, ref, err_msg=name)
        assert res.stats["checksum"] == checksum(want) and res.stats["inputs"] == "random"
    assert len(set(harness_inputs(b.manifest, 0)["f"].ravel())) > 15  # not degenerate


def test_harness_usage_errors(bundles: dict[str, Path], tmp_path: Path) -> None:
    exe = build_harness(open_bundle(bundles["add_relu-host"]), tmp_path)
    for args, msg in ((["--runs", "0"], "--runs needs an integer >= 1"), (["--bogus"], "usage:"),
                      (["--input", "a", "--input", "b"], "2 --input files given, the model has 1"),
                      (["--input", str(tmp_path / "none")], "cannot open"),
                      (["--min-time", "soon"], "--min-time needs seconds")):
        p = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and msg in p.stderr and not p.stdout, (args, p.stderr)
    short = tmp_path / "short.bin"
    short.write_bytes(b"\0" * 10)
    p = subprocess.run([str(exe), "--input", str(short)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "exactly 768 bytes" in p.stderr


def test_local_min_time_and_errors(bundles: dict[str, Path]) -> None:
    proc = cli("bench", str(bundles["add_relu-host"]), "--local", "--runs", "1", "--min-time", "0.1", "--json")
    assert_clean(proc, 0)
    stats = json.loads(proc.stdout)
    # --min-time keeps running past --runs, until the harness's max-runs cap (10**6): a fast
    # machine reaches the cap on this tiny model before 0.1 s (CI did: 10**6 runs in 0.09 s)
    assert stats["runs"] > 1 and stats["device"] == "local"
    assert stats["total_s"] >= 0.1 or stats["runs"] == 1_000_000
    assert_clean(cli("bench", str(bundles["add_relu-host"])), 2, "--device NAME", "--local")
    assert_clean(cli("bench", "/nonexistent/model.onnx", "--local"), 2, "no such bundle directory or model")
    with pytest.raises(CommandTimeout, match="timed out"):  # (warm-up is not capped by --max-runs)
        bench(open_bundle(bundles["add_relu-host"]), None, BenchOptions(runs=1, warmup=10**9, timeout_s=1))


# -- on the loopback device --------------------------------------------------------------------------
def test_bench_host_bundle_cli(sshd: SSHServer, edgec_env: dict, bundles: dict[str, Path],
                               tmp_path: Path) -> None:
    trust(sshd, edgec_env["EDGEC_KNOWN_HOSTS"])
    add_device(entry(sshd))
    bundle = bundles["tanh-host"]
    proc = cli("bench", str(bundle), "--device", "loop", "--runs", "7", "--json", env={"EDGEC_LOG": "debug"})
    assert_clean(proc, 0)
    stats = json.loads(proc.stdout)
    check_stats(stats, 7)
    assert (stats["device"], stats["target"], stats["inputs"]) == ("loop", "host", "random")
    ref = edgec.load(bundle).run(harness_inputs(open_bundle(bundle).manifest, 0))
    assert stats["checksum"] == checksum(list(ref.values()))
    # debug logs show the commands and key *paths*, never the key itself
    assert "edgec_bench" in proc.stderr and str(sshd.user_key) in proc.stderr
    for line in (ln for ln in sshd.user_key.read_text().splitlines() if not ln.startswith("-----")):
        assert line not in proc.stderr + proc.stdout

    base = tmp_path / "base.json"
    base.write_text(proc.stdout)
    proc = cli("bench", str(bundle), "--device", "loop", "--runs", "5", "--baseline", str(base))
    assert_clean(proc, 0)
    assert "median" in proc.stdout and "speed-up" in proc.stdout and stats["checksum"] in proc.stdout


def test_bench_aarch64_model_through_qemu(sshd: SSHServer, edgec_env: dict, bundles: dict[str, Path]) -> None:
    """A model path is built for the device's profile (rpi4), then run on the device through its
    qemu-aarch64 exec wrapper; a real `edgec` process end to end."""
    trust(sshd, edgec_env["EDGEC_KNOWN_HOSTS"])
    add_device(entry(sshd, name="qpi", profile="rpi4", exec_wrapper="qemu-aarch64"))
    proc = cli("bench", str(bundles["add_relu.onnx"]), "--device", "qpi", "--runs", "4", "--json", subprocess_=True)
    assert_clean(proc, 0)
    stats = json.loads(proc.stdout)
    check_stats(stats, 4)
    assert (stats["device"], stats["target"]) == ("qpi", "rpi4")
    manifest = open_bundle(bundles["add_relu-rpi4"]).manifest
    assert stats["checksum"] == checksum(exact_reference("add_relu", harness_inputs(manifest, 0)))


@pytest.mark.parametrize("device", ["host", "rpi4"])
def test_bench_remote_outputs_match_onnxruntime(device: str, sshd: SSHServer, edgec_env: dict,
                                                bundles: dict[str, Path]) -> None:
    """User inputs are uploaded as files, outputs fetched back and compared with onnxruntime."""
    trust(sshd, edgec_env["EDGEC_KNOWN_HOSTS"])
    wrapper = "qemu-aarch64" if device == "rpi4" else ""
    b = open_bundle(bundles[f"tanh-{device}"])
    x = np.random.default_rng(3).standard_normal((4, 48)).astype(np.float32) * 2
    with Device(entry(sshd, profile=device, exec_wrapper=wrapper)) as dev:
        res = bench(b, dev, BenchOptions(runs=2, warmup=0), inputs={"x": x}, fetch_outputs=True)
        with pytest.raises(DeviceError, match="built for"):  # wrong architecture for this device
            bench(open_bundle(bundles["tanh-rpi4" if device == "host" else "tanh-host"]), dev)
    check_stats(res.stats, 2)
    assert res.stats["inputs"] == "files"
    for got, want in zip(res.outputs.values(), run_onnxruntime(tanh_model(), {"x": x})):
        assert_close(got, want)

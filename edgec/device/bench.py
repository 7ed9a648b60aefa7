"""Benchmark a bundle on a device (or locally) with the C harness edgec/device/harness/edgec_bench.c
(package data, so a wheel install carries it; docs/device-bench.md describes it).

The harness is compiled for the bundle's target with the bundle's own toolchain and linked
statically with `lib/lib<name>.a` (so it runs on a device, or under a qemu-user exec wrapper,
without any shared libraries), uploaded into a per-run temp dir, run, and its one JSON line
parsed. Optionally the raw outputs are fetched back.

`harness_inputs` mirrors the harness's seeded input generator and `checksum` its output
checksum, so a host can check a device's result against a reference run.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from edgec.device.ssh import CommandTimeout, Device, RemoteCommandError
from edgec.errors import DeviceError, EdgecError, ToolchainError
from edgec.packager.bundle import Bundle, read_manifest, verify_bundle
from edgec.targets import TargetProfile, get_profile
from edgec.toolchain import find_toolchain, run_binary

HARNESS_SOURCE = resources.files("edgec.device") / "harness" / "edgec_bench.c"
RESULT_KEYS = ("min_us", "median_us", "mean_us", "p90_us", "max_us", "runs", "threads", "checksum")
_SIGNALS = {4: "SIGILL: the device lacks a CPU feature the bundle was built for", 6: "SIGABRT",
            7: "SIGBUS", 9: "SIGKILL (out of memory?)", 11: "SIGSEGV"}


@dataclass(frozen=True)
class BenchOptions:
    runs: int = 50
    warmup: int = 5
    min_time_s: float = 0.0
    threads: int | None = None  # None: the thread count the bundle was built with
    seed: int = 0
    timeout_s: float = 300.0
    profile: bool = False  # per-layer table of a bundle built with --profile (docs/profiling.md)

    def harness_args(self, threads: int) -> list[str]:
        if self.runs < 1 or self.warmup < 0 or self.min_time_s < 0 or threads < 1 or self.seed < 0:
            raise EdgecError("bench: --runs and --threads must be >= 1; --warmup, --min-time, --seed >= 0")
        return ["--runs", str(self.runs), "--warmup", str(self.warmup), "--min-time",
                repr(float(self.min_time_s)), "--threads", str(threads), "--seed", str(self.seed)]


@dataclass
class BenchResult:
    stats: dict  # the harness JSON plus context (device, target, bundle, model_sha256)
    outputs: dict[str, np.ndarray] | None = field(default=None)
    profile: dict | None = None  # with BenchOptions.profile: edgec.device.profile_report.summarize


# -- inputs and checksum mirrored from the harness ------------------------------------------------
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(seed: int, start: int, n: int) -> np.ndarray:
    """Draws start+1 .. start+n of splitmix64 seeded with `seed` (numpy uint64 wraps mod 2^64)."""
    z = np.uint64(seed) + np.arange(start + 1, start + n + 1, dtype=np.uint64) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _values(z: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == np.float16:
        return (((z >> np.uint64(53)).astype(np.int64) - 1024) / 1024).astype(np.float16)
    if dtype.kind == "f":
        return ((z >> np.uint64(40)).astype(np.float64) * 2.0**-23 - 1.0).astype(dtype)
    if dtype == np.bool_:
        return (z >> np.uint64(63)).astype(np.bool_)
    if dtype.kind == "i":
        return ((z >> np.uint64(60)).astype(np.int64) - 8).astype(dtype)
    return (z >> np.uint64(60)).astype(dtype)


def harness_inputs(manifest: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """The inputs the harness generates for `--seed seed` (one stream across inputs in order)."""
    out, used = {}, 0
    for t in manifest["inputs"]:
        n = int(np.prod(t["shape"], dtype=np.int64))
        out[t["name"]] = _values(_splitmix64(seed, used, n), np.dtype(t["dtype"])).reshape(t["shape"])
        used += n
    return out


def checksum(outputs: list[np.ndarray]) -> str:
    """FNV-1a 64 of all output bytes in order, as the harness prints it."""
    h = 0xCBF29CE484222325
    for a in outputs:
        for byte in np.ascontiguousarray(a).tobytes():
            h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"fnv1a64:{h:016x}"


# -- bundles and the harness binary -----------------------------------------------------------------
def bundle_profile(bundle: Bundle) -> TargetProfile:
    return get_profile(bundle.manifest["device"])


def open_bundle(path: str | Path) -> Bundle:
    manifest = read_manifest(path)
    verify_bundle(Path(path), manifest)
    return Bundle(Path(path), manifest)


@contextmanager
def bundle_or_model(path: str | Path, device: str, **build_kw: object) -> Iterator[Bundle]:
    """A bundle directory as is, or an ONNX model built for the device profile `device` into a
    temp dir (`build_kw`: edgec.build's keywords)."""
    p = Path(path)
    if p.is_dir():
        yield open_bundle(p)
        return
    if not p.is_file():
        raise EdgecError(f"{p}: no such bundle directory or model file")
    from edgec.compiler import build

    with tempfile.TemporaryDirectory(prefix="edgec-bench-") as tmp:
        yield build(p, device=device, out_dir=Path(tmp) / "bundle", **build_kw)


def build_harness(bundle: Bundle, out_dir: Path, profile: bool = False) -> Path:
    """Compile and statically link the harness for the bundle's target; returns the binary.
    `profile`: the harness also prints the per-kernel table (a bundle built with --profile)."""
    if not HARNESS_SOURCE.is_file():
        raise ToolchainError(f"benchmark harness source not found at {HARNESS_SOURCE} "
                             "(package data of edgec: reinstall edgec)")
    tc = find_toolchain(bundle_profile(bundle))
    (out_dir / "edgec_bench.c").write_bytes(HARNESS_SOURCE.read_bytes())
    # A one-line wrapper names the bundle's symbol prefix, so the shared link helper needs no
    # extra flags.
    if profile and not isinstance(bundle.manifest.get("profile"), dict):
        raise EdgecError(f"bundle {bundle.path} was built without --profile: rebuild it with "
                         "`edgec build --profile` (or bench the model file with --profile)")
    (out_dir / "bench_main.c").write_text(f'#define EDGEC_PREFIX {bundle.name}\n'
                                          + ("#define EDGEC_BENCH_PROFILE 1\n" if profile else "")
                                          + '#include "edgec_bench.c"\n')
    tc.link_executable("edgec_bench", ["bench_main.c", str(bundle.static_library.resolve())], out_dir,
                       [str((bundle.path / "include").resolve())], static=True)
    return out_dir / "edgec_bench"


def _write_inputs(bundle: Bundle, inputs: dict[str, np.ndarray], out_dir: Path) -> list[Path]:
    from edgec.runner import _check_inputs  # same name/shape/dtype rules as `edgec run`

    files = []
    for k, a in enumerate(_check_inputs(bundle.manifest, inputs)):
        files.append(out_dir / f"in{k}.bin")
        files[-1].write_bytes(a.tobytes())
    return files


def _parse(stdout: bytes, where: str) -> dict:
    for line in reversed(stdout.decode(errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                stats = json.loads(line)
            except json.JSONDecodeError:
                break
            missing = [k for k in RESULT_KEYS if k not in stats]
            if not missing:
                return stats
    raise DeviceError(f"the benchmark harness on {where} printed no result line: {stdout[-300:]!r}")


def _failure(code: int, stderr: str, where: str) -> str:
    if code in (126, 127):
        why = ("cannot execute the harness (wrong architecture for this device, or its exec "
               "wrapper is missing; see `edgec devices check`)")
    elif code > 128:
        why = f"harness killed by signal {code - 128} ({_SIGNALS.get(code - 128, 'signal')})"
    else:
        why = f"harness failed (exit {code})"
    return f"{where}: {why}: {stderr.strip()[-600:]}"


def _read_outputs(bundle: Bundle, files: list[Path]) -> dict[str, np.ndarray]:
    return {t["name"]: np.frombuffer(f.read_bytes(), np.dtype(t["dtype"])).reshape(t["shape"])
            for t, f in zip(bundle.manifest["outputs"], files)}


def bench(bundle: Bundle, device: Device | None = None, options: BenchOptions = BenchOptions(),
          inputs: dict[str, np.ndarray] | None = None, fetch_outputs: bool = False) -> BenchResult:
    """Benchmark `bundle` on `device` over SSH, or on this machine when device is None
    (natively or through the bundle profile's qemu-user wrapper)."""
    profile = bundle_profile(bundle)
    threads = options.threads or int(bundle.manifest.get("build_options", {}).get("threads", 1))
    args = options.harness_args(threads)
    n_out = len(bundle.manifest["outputs"])
    with tempfile.TemporaryDirectory(prefix="edgec-harness-") as tmp_s:
        tmp = Path(tmp_s)
        exe = build_harness(bundle, tmp, options.profile)
        files = _write_inputs(bundle, inputs, tmp) if inputs is not None else []
        for k in range(len(files)):
            args += ["--input", f"in{k}.bin"]
        if fetch_outputs:
            args += ["--output-dir", "."]
        if device is None:
            where = f"this machine ({profile.name})"
            try:
                proc = run_binary(profile, [str(exe), *args], cwd=tmp, timeout=options.timeout_s)
            except subprocess.TimeoutExpired:
                raise CommandTimeout(f"benchmark timed out after {options.timeout_s:g} s on {where}") from None
            code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
            if code != 0:
                raise DeviceError(_failure(code, proc.stderr.decode(errors="replace"), where))
            stats = _parse(proc.stdout, where)
            outputs = _read_outputs(bundle, [tmp / f"out{k}.bin" for k in range(n_out)]) if fetch_outputs else None
        else:
            where = f"device {device.name!r}"
            stats, outputs = _bench_remote(device, bundle, exe, files, args, options, tmp, n_out, fetch_outputs)
    stats |= {"device": device.name if device else "local", "target": profile.name,
              "bundle": bundle.name, "model_sha256": bundle.manifest.get("model_sha256")}
    report = None
    if options.profile:
        from edgec.device.profile_report import summarize

        emulated = bool(device.entry.wrapper_argv if device else profile.exec_wrapper)
        report = summarize(bundle.manifest, stats, profile, emulated, where)
    return BenchResult(stats, outputs, report)


def check_target(device: Device, bundle: Bundle) -> None:
    """The bundle must be built for the device profile's architecture and float ABI."""
    want, have = device.entry.target, bundle_profile(bundle)
    if (want.arch, want.float_abi) != (have.arch, have.float_abi):
        raise DeviceError(f"bundle {bundle.path} is built for {have.name} ({have.arch}) but device "
                          f"{device.name!r} has profile {want.name} ({want.arch}); rebuild with "
                          f"`edgec build --device {want.name}`")


def _bench_remote(device: Device, bundle: Bundle, exe: Path, files: list[Path], args: list[str],
                  options: BenchOptions, tmp: Path, n_out: int, fetch: bool) -> tuple[dict, dict | None]:
    check_target(device, bundle)
    device.connect()
    where = f"device {device.name!r}"
    with device.run_dir() as rdir:
        device.upload(exe, f"{rdir}/edgec_bench", mode=0o755)
        for f in files:
            device.upload(f, f"{rdir}/{f.name}")
        argv = [*device.entry.wrapper_argv, "./edgec_bench", *args]
        try:
            res = device.run(f"cd {shlex.quote(rdir)} && {shlex.join(argv)}", timeout=options.timeout_s)
        except RemoteCommandError as exc:
            r = exc.result
            raise RemoteCommandError(_failure(r.exit_code, r.stderr.decode(errors="replace"), where), r) from None
        stats = _parse(res.stdout, where)
        outputs = None
        if fetch:
            local = [tmp / f"out{k}.bin" for k in range(n_out)]
            for k, f in enumerate(local):
                device.fetch(f"{rdir}/out{k}.bin", f)
            outputs = _read_outputs(bundle, local)
    return stats, outputs


def compare_baseline(stats: dict, baseline: dict) -> dict:
    """Speed-up of `stats` over a stored `--json` result (>1 = faster now)."""
    missing = [k for k in ("median_us", "min_us") if not isinstance(baseline.get(k), (int, float))]
    if missing:
        raise EdgecError(f"baseline has no {', '.join(missing)}: expected the output of `edgec bench --json`")
    return {"baseline_median_us": baseline["median_us"], "baseline_min_us": baseline["min_us"],
            "speedup_median": round(baseline["median_us"] / max(stats["median_us"], 1e-9), 4),
            "speedup_min": round(baseline["min_us"] / max(stats["min_us"], 1e-9), 4),
            "same_model": baseline.get("model_sha256") == stats.get("model_sha256"),
            "same_device": baseline.get("device") == stats.get("device")}

"""Measure configs of a task: build the task's one-kernel model once per config (the config
applied as a schedule override) with the bench harness linked in, then run a batch of them on
a device: locally (natively or under the profile's qemu-user wrapper) or over SSH, where one
upload into one run dir carries the whole batch. Each run's output is checked against a float64
numpy reference. Error kinds: compile, runtime, timeout, wrong_answer, device_lost."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgec.device.bench import _parse, build_harness, harness_inputs
from edgec.device.ssh import CommandTimeout, Device, DeviceLost
from edgec.errors import DeviceError
from edgec.kernels.conv_direct.tuning import ConvTaskShapes
from edgec.kernels.gemv.tuning import GemvTaskShapes
from edgec.targets import get_profile
from edgec.toolchain import run_binary
from edgec.tune.tasks import reference_output, task_model


@dataclass(frozen=True)
class MeasureOptions:
    runs: int = 20
    warmup: int = 3
    min_time_s: float = 0.05
    timeout_s: float = 30.0
    seed: int = 0

    def args(self) -> list[str]:
        return ["--runs", str(self.runs), "--warmup", str(self.warmup), "--min-time",
                repr(float(self.min_time_s)), "--threads", "1", "--seed", str(self.seed)]


@dataclass
class Built:
    index: int
    knobs: dict
    exe: Path | None = None
    error: str | None = None
    detail: str = ""


@dataclass
class MeasureResult:
    index: int
    knobs: dict
    costs_s: list[float] = field(default_factory=list)
    error: str | None = None
    detail: str = ""
    device: str = ""

    @property
    def cost(self) -> float | None:
        return None if self.error or not self.costs_s else sum(self.costs_s) / len(self.costs_s)


Emit = Callable[[MeasureResult], None]


def _io_manifest(task: dict) -> dict:
    shape = ConvTaskShapes.of(task).x if task["kernel"] != "gemv" else [1, GemvTaskShapes.of(task).k]
    return {"inputs": [{"name": "input", "shape": shape, "dtype": "float32"}]}


class TaskBuilder:
    """Builds configs of one task into `work` (one bundle + harness per config)."""

    def __init__(self, task: dict, work: Path, seed: int = 0):
        self.task, self.work, self.seed = task, Path(work), seed
        self.model = task_model(task, seed)
        x = harness_inputs(_io_manifest(task), seed)["input"]
        self.reference = reference_output(task, x, seed)

    def build(self, index: int, knobs: dict) -> Built:
        from edgec.compiler import build
        from edgec.tune.keys import task_key, task_options

        out = self.work / f"c{index}"
        opts = task_options(self.task)  # the kernel is measured as the task's build makes it
        try:
            bundle = build(self.model, device=self.task["target"], out_dir=out / "bundle", name="model",
                           schedule_overrides={task_key(self.task): knobs}, fast_math=opts.fast_math,
                           weights=opts.weights, quantize=opts.precision, precision=opts.compute)
            exe = build_harness(bundle, out)
        except Exception as exc:  # any failure to produce a binary is this config's compile error
            return Built(index, knobs, None, "compile", f"{type(exc).__name__}: {str(exc)[:300]}")
        return Built(index, knobs, exe)

    def check(self, raw: bytes) -> str | None:
        """None when the output matches the reference, else why not."""
        ref = self.reference
        got = np.frombuffer(raw, np.float32)
        if got.size != ref.size:
            return f"output has {got.size} values, expected {ref.size}"
        err = np.abs(got.astype(np.float64) - ref.reshape(-1))
        # compressed weights (int8 / fp16) and fp16 arithmetic differ from the fp64 reference
        # by their rounding
        o = self.task.get("options", {})
        exact = o.get("weights", "fp32") == "fp32" and o.get("precision") is None and o.get("compute", "fp32") == "fp32"
        tol = (1e-3 if exact else 5e-2) * max(1.0, float(np.abs(ref).max()))
        if not np.isfinite(got).all() or err.max() > tol:
            return f"max abs error {float(np.nanmax(err)):.3g} > {tol:.3g}"
        return None


def _result(builder: TaskBuilder, b: Built, stats: dict, raw: bytes, device: str) -> MeasureResult:
    wrong = builder.check(raw)
    if wrong:
        return MeasureResult(b.index, b.knobs, [], "wrong_answer", wrong, device)
    return MeasureResult(b.index, b.knobs, [stats["min_us"] * 1e-6], None,
                         f"median_us={stats['median_us']:.3f}", device)


class LocalRunner:
    """This machine as a device (ARM targets run under the profile's qemu-user wrapper)."""

    name = "local"

    def measure(self, builder: TaskBuilder, batch: list[Built], opts: MeasureOptions, emit: Emit) -> None:
        profile = get_profile(builder.task["target"])
        for b in batch:
            assert b.exe is not None
            wd = b.exe.parent
            try:
                proc = run_binary(profile, [str(b.exe), *opts.args(), "--output-dir", "."], cwd=wd,
                                  timeout=opts.timeout_s)
            except subprocess.TimeoutExpired:
                emit(MeasureResult(b.index, b.knobs, [], "timeout", f"> {opts.timeout_s:g} s", self.name))
                continue
            if proc.returncode != 0:
                emit(MeasureResult(b.index, b.knobs, [], "runtime",
                                   f"exit {proc.returncode}: {proc.stderr.decode(errors='replace')[-200:]}",
                                   self.name))
                continue
            try:
                stats = _parse(proc.stdout, self.name)
            except DeviceError as exc:
                emit(MeasureResult(b.index, b.knobs, [], "runtime", str(exc)[:200], self.name))
                continue
            emit(_result(builder, b, stats, (wd / "out0.bin").read_bytes(), self.name))

    def recover(self) -> bool:
        return True

    def close(self) -> None:
        pass


class SSHRunner:
    """A registered device over SSH: one run dir and one upload per batch, one command per
    config. DeviceLost propagates (the pool re-queues or reports what was not measured)."""

    def __init__(self, device: Device):
        self.device = device
        self.name = device.name

    def measure(self, builder: TaskBuilder, batch: list[Built], opts: MeasureOptions, emit: Emit) -> None:
        dev = self.device
        dev.connect()
        with dev.run_dir() as rdir:
            for b in batch:
                assert b.exe is not None
                dev.upload(b.exe, f"{rdir}/h{b.index}", mode=0o755)
            for b in batch:
                argv = [*dev.entry.wrapper_argv, f"./h{b.index}", *opts.args(), "--output-dir", f"o{b.index}"]
                cmd = f"cd {shlex.quote(rdir)} && mkdir -p o{b.index} && {shlex.join(argv)}"
                local = b.exe.parent / "out0.remote.bin"
                try:
                    res = dev.run(cmd, timeout=opts.timeout_s)
                    stats = _parse(res.stdout, self.name)
                    dev.fetch(f"{rdir}/o{b.index}/out0.bin", local)
                except DeviceLost:
                    raise
                except DeviceError as exc:  # timeout, non-zero exit, no result, failed fetch
                    # A device dying mid-command can look like a failed command: ask it.
                    if not self._alive():
                        raise DeviceLost(f"device {self.name!r} stopped answering: {exc}") from None
                    kind = "timeout" if isinstance(exc, CommandTimeout) else "runtime"
                    emit(MeasureResult(b.index, b.knobs, [], kind, str(exc)[:200], self.name))
                    continue
                emit(_result(builder, b, stats, local.read_bytes(), self.name))

    def _alive(self) -> bool:
        try:
            self.device.run("true", timeout=10)
            return True
        except DeviceError:
            return False

    def recover(self) -> bool:
        """Try to reconnect (with the session's backoff); False: retire this device."""
        try:
            self.device.reconnect()
            return True
        except DeviceError:
            return False

    def close(self) -> None:
        self.device.close()

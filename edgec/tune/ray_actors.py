"""What runs inside Ray's worker processes for the tuning farm (edgec.tune.ray_farm drives it):
the build task of one config, the per-node toolchain check, and the device actor.

A device actor is made from a `RunnerSpec`: a name and a picklable factory that makes the
runner inside the actor (so the SSH session lives in the actor's process, on whatever node Ray
placed it). SSH specs carry the driver's known_hosts lines for the device (public keys, checked
before the farm starts), never a private key: the key path must exist on the actor's node."""

from __future__ import annotations

import dataclasses
import functools
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import ray

from edgec.device.ssh import DeviceLost
from edgec.errors import DeviceError, EdgecError
from edgec.tune.keys import task_key
from edgec.tune.measure import Built, MeasureOptions, MeasureResult, TaskBuilder


@dataclasses.dataclass(frozen=True)
class RunnerSpec:
    name: str
    factory: Callable[[Path], object]  # work dir -> runner (LocalRunner, SSHRunner, ...)


def _local_runner(name: str, work: Path):  # noqa: ANN202
    from edgec.tune.measure import LocalRunner

    r = LocalRunner()
    r.name = name
    return r


def _ssh_runner(entry, known_hosts: str, session: dict, work: Path):  # noqa: ANN001, ANN202
    from edgec.device.ssh import Device
    from edgec.tune.measure import SSHRunner

    kh = work / "known_hosts"
    kh.write_text(known_hosts)
    return SSHRunner(Device(dataclasses.replace(entry, known_hosts=str(kh)), **session))


def local_spec(name: str = "local") -> RunnerSpec:
    return RunnerSpec(name, functools.partial(_local_runner, name))


def ssh_spec(entry, known_hosts: str, **session: object) -> RunnerSpec:  # noqa: ANN001 - DeviceEntry
    return RunnerSpec(entry.name, functools.partial(_ssh_runner, entry, known_hosts, dict(session)))


# -- per node -----------------------------------------------------------------------------------
def node_facts(target: str) -> dict:
    """What this process's node lacks to build for `target`, and the versions that decide the
    generated code (a node with another edgec or LLVM would build other kernels)."""
    from llvmlite import binding as llvm

    from edgec.targets import get_profile
    from edgec.toolchain import find_toolchain
    from edgec.toolchain.lld import find_lld
    from edgec.version import __version__

    missing = []
    try:
        find_toolchain(get_profile(target))
    except EdgecError as exc:
        missing.append(str(exc).split(";")[0])
    try:
        find_lld()
    except EdgecError:
        missing.append("ld.lld")
    return {"missing": missing, "versions": {"edgec": __version__, "llvm": ".".join(map(str, llvm.llvm_version_info))}}


node_check = ray.remote(node_facts)


# -- builds -------------------------------------------------------------------------------------
_builders: dict[str, TaskBuilder] = {}  # per worker process: the last task's builder


def _builder(task: dict, seed: int) -> TaskBuilder:
    key = f"{seed}:{task_key(task)}"
    if key not in _builders:
        _builders.clear()
        _builders[key] = TaskBuilder(task, Path(tempfile.gettempdir()), seed)
    return _builders[key]


@ray.remote(num_returns=2)
def build_config(task: dict, index: int, knobs: dict, seed: int) -> tuple[tuple[str | None, str], bytes]:
    """Build one config; ((error kind, detail), harness bytes)."""
    work = Path(tempfile.mkdtemp(prefix="edgec-farm-b"))
    try:
        b = _builder(task, seed)
        b.work = work
        built = b.build(index, knobs)
        if built.error:
            return (built.error, built.detail), b""
        return (None, ""), built.exe.read_bytes()
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- devices ------------------------------------------------------------------------------------
class _Checker:
    """The TaskBuilder's reference check, made only when a runner checks an output (a
    simulated device does not)."""

    def __init__(self, task: dict, seed: int, work: Path):
        self.task, self.seed, self.work = task, seed, work
        self._b: TaskBuilder | None = None

    def check(self, raw: bytes) -> str | None:
        if self._b is None:
            self._b = TaskBuilder(self.task, self.work, self.seed)
        return self._b.check(raw)


@ray.remote
class DeviceActor:
    """One device, one measurement at a time. `measure` returns the result, or a string (why)
    when the device is lost for good: the driver retires the actor and re-queues the config."""

    def __init__(self, spec: RunnerSpec, retries: int = 1):
        self.work = Path(tempfile.mkdtemp(prefix="edgec-farm-d"))
        self.name = spec.name
        self.runner = spec.factory(self.work)
        self.retries = retries
        self._checker: _Checker | None = None

    def measure(self, task: dict, index: int, knobs: dict, exe: bytes, opts: MeasureOptions
                ) -> MeasureResult | str:
        key = task_key(task)
        if self._checker is None or task_key(self._checker.task) != key or self._checker.seed != opts.seed:
            self._checker = _Checker(task, opts.seed, self.work)
        d = self.work / f"c{index}"
        d.mkdir(parents=True, exist_ok=True)
        path = d / "harness"
        path.write_bytes(exe)
        path.chmod(0o755)
        out: list[MeasureResult] = []
        tries = 0
        try:
            while True:
                try:
                    self.runner.measure(self._checker, [Built(index, knobs, path)], opts, out.append)
                    break
                except DeviceLost as exc:
                    if tries < self.retries and self.runner.recover():
                        tries += 1
                        continue
                    return f"device lost: {exc}"[:300]
                except DeviceError as exc:  # e.g. auth refused by a half-dead sshd
                    return f"device failed: {exc}"[:300]
                except Exception as exc:  # noqa: BLE001 - the config's fault, as in DevicePool
                    return MeasureResult(index, knobs, [], "runtime", f"{type(exc).__name__}: {str(exc)[:200]}",
                                         self.name)
        finally:
            shutil.rmtree(d, ignore_errors=True)
        if not out:
            return MeasureResult(index, knobs, [], "runtime", "the runner reported nothing", self.name)
        r = out[0]
        r.device = r.device or self.name
        return r

    def close(self) -> None:
        try:
            self.runner.close()
        finally:
            shutil.rmtree(self.work, ignore_errors=True)

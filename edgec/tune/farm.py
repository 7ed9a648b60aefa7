"""Where a tuning batch is built and measured. The tuner owns the search and the log; a farm
takes a batch of configs of one task and reports one `MeasureResult` per config through
`record` (build failures as `compile` from the device "build"), in the order they finish.

- `PoolFarm` (`--cluster pool`, the default): builds the batch here, one config after the
  other, then measures it on `DevicePool`, one worker thread per device.
- `RayFarm` (`--cluster ray|ray://HOST:PORT`, edgec.tune.ray_farm): builds are Ray tasks on
  any node with CPUs, every device is a Ray actor.

Both retire a device that is lost for good, hand its unmeasured configs to the others, and
report `device_lost` (then raise `AllDevicesLost`) only when no device is left."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from edgec.errors import EdgecError
from edgec.tune.keys import task_key
from edgec.tune.measure import Built, MeasureOptions, MeasureResult, TaskBuilder
from edgec.tune.pool import DevicePool

Record = Callable[[MeasureResult], None]
Batch = list[tuple[int, dict]]  # (config index, knobs)


class Farm(Protocol):
    def run_batch(self, task: dict, batch: Batch, opts: MeasureOptions, record: Record) -> None: ...

    def close(self) -> None: ...


class PoolFarm:
    """Today's single-machine path: build here, measure on a thread per device."""

    def __init__(self, runners: list, seed: int = 0):
        self.pool = DevicePool(runners)
        self.seed = seed
        self._builder: TaskBuilder | None = None  # of the task being tuned (its reference output)

    def run_batch(self, task: dict, batch: Batch, opts: MeasureOptions, record: Record) -> None:
        work = Path(tempfile.mkdtemp(prefix="edgec-tune-"))
        try:
            if self._builder is None or task_key(self._builder.task) != task_key(task):
                self._builder = TaskBuilder(task, work, opts.seed)
            builder = self._builder
            builder.work = work
            built: list[Built] = [builder.build(i, knobs) for i, knobs in batch]
            for b in built:
                if b.error:
                    record(MeasureResult(b.index, b.knobs, [], b.error, b.detail, "build"))
            self.pool.measure(builder, [b for b in built if not b.error], opts, record)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def close(self) -> None:
        self.pool.close()


CLUSTERS = ("pool", "ray", "ray://HOST:PORT")


def import_ray():  # noqa: ANN201
    """The `ray` module, or a one-line error saying what to install."""
    try:
        import ray
    except ImportError:
        raise EdgecError("--cluster ray needs Ray: pip install 'edgec[farm]' (or pip install 'ray>=2.40')") from None
    return ray


def check_cluster(cluster: str) -> str:
    """`pool`, `ray` or `ray://host:port`; anything else is a usage error."""
    if cluster in ("pool", "ray") or (cluster.startswith("ray://") and len(cluster) > len("ray://")):
        return cluster
    raise EdgecError(f"--cluster {cluster!r}: expected one of {', '.join(CLUSTERS)}")

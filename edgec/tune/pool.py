"""A pool of measuring devices: one worker thread per device pulling chunks of a batch from a
shared queue. When a device is lost mid-chunk, the worker tries to reconnect (with backoff);
if that fails the device is retired and the unmeasured rest of its chunk goes back to the
queue for another device, or, when no device is left, is reported as `device_lost`."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from edgec.device.ssh import DeviceLost
from edgec.errors import DeviceError
from edgec.tune.measure import Built, MeasureOptions, MeasureResult, TaskBuilder

log = logging.getLogger("edgec.tune")


class AllDevicesLost(DeviceLost):
    """No device of the pool is left; resume the run from the log later."""


class _Job:
    def __init__(self, builder: TaskBuilder, items: list[Built], opts: MeasureOptions,
                 emit: Callable[[MeasureResult], None]):
        self.builder, self.opts, self.emit = builder, opts, emit
        self.pending = {b.index: b for b in items}
        self.lock = threading.Lock()
        self.done = threading.Event()
        if not items:
            self.done.set()

    def report(self, r: MeasureResult) -> None:
        with self.lock:
            if self.pending.pop(r.index, None) is None:
                return  # measured already (a re-queued chunk raced its original)
            last = not self.pending
        self.emit(r)
        if last:
            self.done.set()


class DevicePool:
    def __init__(self, runners: list, retries: int = 1):
        self.runners = runners
        self.retries = retries
        self._q: queue.Queue = queue.Queue()
        self._alive = len(runners)
        self._lock = threading.Lock()
        self.retired: list[str] = []
        self._threads = [threading.Thread(target=self._work, args=(r,), daemon=True, name=f"tune-{r.name}")
                         for r in runners]
        for t in self._threads:
            t.start()

    @property
    def alive(self) -> int:
        with self._lock:
            return self._alive

    def measure(self, builder: TaskBuilder, items: list[Built], opts: MeasureOptions,
                emit: Callable[[MeasureResult], None]) -> None:
        """Measure `items` (split over the live devices); returns when every item has a
        result. Raises AllDevicesLost after reporting `device_lost` for what was left."""
        job = _Job(builder, items, opts, emit)
        n = max(1, min(self.alive, len(items)))
        for k in range(n):
            chunk = items[k::n]
            if chunk:
                self._put(job, chunk)
        job.done.wait()
        if self.alive == 0:
            raise AllDevicesLost(f"all devices lost ({', '.join(self.retired)}); "
                                 "run again with --resume to finish")

    def _put(self, job: _Job, chunk: list[Built]) -> None:
        with self._lock:
            if self._alive:
                self._q.put((job, chunk))
                return
        self._lost(job, chunk, "no device left")

    @staticmethod
    def _lost(job: _Job, chunk: list[Built], why: str) -> None:
        for b in chunk:
            if b.index in job.pending:
                job.report(MeasureResult(b.index, b.knobs, [], "device_lost", why[:200]))

    def _work(self, runner) -> None:  # noqa: ANN001
        while True:
            item = self._q.get()
            if item is None:
                return
            job, chunk = item
            tries = 0
            while True:
                todo = [b for b in chunk if b.index in job.pending]
                try:
                    runner.measure(job.builder, todo, job.opts, job.report)
                    break
                except DeviceLost as exc:
                    log.warning("%s: device lost: %s", runner.name, exc)
                    rest = [b for b in chunk if b.index in job.pending]
                    if tries < self.retries and runner.recover():
                        tries += 1
                        continue
                    self._retire(runner, job, rest, str(exc))
                    return
                except DeviceError as exc:  # e.g. auth refused by a half-dead sshd: the device's fault
                    log.warning("%s: device failed: %s", runner.name, exc)
                    self._retire(runner, job, [b for b in chunk if b.index in job.pending], str(exc))
                    return
                except Exception as exc:  # noqa: BLE001 - a worker must never die silently
                    log.warning("%s: measurement failed: %s", runner.name, exc)
                    for b in [b for b in chunk if b.index in job.pending]:
                        job.report(MeasureResult(b.index, b.knobs, [], "runtime",
                                                 f"{type(exc).__name__}: {str(exc)[:200]}", runner.name))
                    break

    def _retire(self, runner, job: _Job, rest: list[Built], why: str) -> None:  # noqa: ANN001
        with self._lock:
            self._alive -= 1
            self.retired.append(runner.name)
            left = self._alive
        runner.close()
        if left:
            if rest:
                self._q.put((job, rest))
            return
        # Last device gone: everything queued or in flight is lost.
        self._lost(job, rest, f"{runner.name}: {why}")
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._lost(item[0], item[1], f"{runner.name}: {why}")

    def close(self) -> None:
        for _ in self._threads:
            self._q.put(None)
        for t in self._threads:
            t.join(timeout=30)
        for r in self.runners:
            r.close()

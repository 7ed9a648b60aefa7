"""LLVM compiles of many small modules on worker processes (llvmlite serializes every call to
LLVM behind one lock, so threads cannot help; kernels are independent modules). Results come
back in input order, so the objects, and the bundle, do not depend on which worker finished
first.

Workers are plain subprocesses (`python -m edgec.codegen.compile_worker`) fed pickled modules
over a pipe, not `multiprocessing`: its spawn and forkserver methods re-run the caller's main
script in every worker (a user script without a `__main__` guard would build again), and a fork
of a process that runs threads (onnxruntime, pytest-xdist) may deadlock. They start on first use,
serve the next builds of the same process and are used only when the work is worth the
hand-over (`PARALLEL_MIN_IR_BYTES`). A worker that dies is dropped and its module compiled here."""

from __future__ import annotations

import atexit
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from edgec.codegen.module import Codegen
from edgec.targets import TargetProfile

# Below this much IR text (about a second of LLVM) the pool's start-up and pickling cost more
# than they save.
PARALLEL_MIN_IR_BYTES = 2 << 20
MAX_JOBS = 8

_codegens: dict[tuple, Codegen] = {}
_idle: list[_Worker] = []
_idle_lock = threading.Lock()


def default_jobs() -> int:
    """`EDGEC_JOBS`, else the CPUs this process may run on (at most MAX_JOBS)."""
    env = os.environ.get("EDGEC_JOBS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        n = os.cpu_count() or 1
    return max(1, min(n, MAX_JOBS))


def _codegen(profile: TargetProfile, opt_level: int) -> Codegen:
    key = (profile.triple, profile.cpu, profile.features, opt_level)
    if key not in _codegens:
        _codegens[key] = Codegen(profile, opt_level)
    return _codegens[key]


def emit_one(profile: TargetProfile, opt_level: int, ir_text: str) -> tuple[bytes, float]:
    """One module -> (object, seconds); runs in a worker or in this process."""
    t = time.perf_counter()
    obj = _codegen(profile, opt_level).emit_object(ir_text)
    return obj, time.perf_counter() - t


def send(stream, obj: object) -> None:  # noqa: ANN001  (a binary file)
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def receive(stream) -> object:  # noqa: ANN001
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError
    (n,) = struct.unpack("<Q", head)
    data = stream.read(n)
    if len(data) < n:
        raise EOFError
    return pickle.loads(data)


class WorkerDied(Exception):
    pass


class _Worker:
    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[2])  # the directory holding the edgec package
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
        self.proc = subprocess.Popen([sys.executable, "-m", "edgec.codegen.compile_worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)

    def run(self, task: tuple) -> tuple[bytes, float]:
        try:
            send(self.proc.stdin, task)
            status, *payload = receive(self.proc.stdout)
        except (OSError, EOFError, pickle.UnpicklingError):
            self.close()
            raise WorkerDied from None
        if status != "ok":
            raise RuntimeError(payload[0])  # LLVM's own error, as in-process compiles raise it
        return payload[0], payload[1]

    def close(self) -> None:
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _close_all() -> None:
    with _idle_lock:
        workers, _idle[:] = list(_idle), []
    for w in workers:
        w.close()


atexit.register(_close_all)


def _on_worker(task: tuple) -> tuple[bytes, float] | None:
    """Run `task` on an idle worker (started if none); None if the worker died."""
    with _idle_lock:
        w = _idle.pop() if _idle else None
    try:
        w = w or _Worker()
        result = w.run(task)
    except (WorkerDied, OSError):
        return None
    except BaseException:
        with _idle_lock:
            _idle.append(w)  # type: ignore[arg-type]
        raise
    with _idle_lock:
        _idle.append(w)
    return result


def emit_objects(profile: TargetProfile, opt_level: int, texts: list[str], jobs: int,
                 lost: list[int] | None = None) -> list[tuple[bytes, float]]:
    """Objects of `texts` in their order; on `jobs` worker processes when the work is large.
    `lost` (if given) receives the number of modules a dead worker left to this process: a
    pool that cannot start shows in `--timings`, it is not silently slow."""
    results: list[tuple[bytes, float] | None] = [None] * len(texts)
    pooled = False
    if jobs > 1 and len(texts) > 1 and sum(map(len, texts)) >= PARALLEL_MIN_IR_BYTES:
        # largest first: the long compiles start early and the tail is short
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        with ThreadPoolExecutor(max_workers=min(jobs, len(texts))) as threads:
            futures = {i: threads.submit(_on_worker, (profile, opt_level, texts[i])) for i in order}
            for i in order:
                results[i] = futures[i].result()
        pooled = True
    if lost is not None:
        lost.append(sum(r is None for r in results) if pooled else 0)
    for i, r in enumerate(results):
        if r is None:  # small work, or its worker died
            results[i] = emit_one(profile, opt_level, texts[i])
    return results  # type: ignore[return-value]

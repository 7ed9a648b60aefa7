"""The tuning log (docs/tuning-log.md): JSON lines, one measurement a line, append-only, flushed per
line. `{"task": {kernel, shapes, dtype, target, options}, "config": {index, knobs}, "result": {costs_s,
error, timestamp, ...}, "device": name, "version": 1}`.

A resumed run skips every config already measured, except those whose only results are
`device_lost` (the device failed, not the config: they are measured again)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from edgec.errors import EdgecError
from edgec.tune.keys import Overrides, task_fields, task_key

VERSION = 1
ERROR_KINDS = ("compile", "runtime", "timeout", "wrong_answer", "device_lost")


def make_record(task: dict, index: int, knobs: dict, costs_s: list[float], error: str | None,
                device: str, **extra: object) -> dict:
    if error is not None and error not in ERROR_KINDS:
        raise ValueError(f"unknown error kind {error!r}")
    result = {"costs_s": [float(c) for c in costs_s], "error": error, "timestamp": round(time.time(), 3)}
    result.update(extra)
    return {"task": task_fields(task),
            "config": {"index": int(index), "knobs": knobs}, "result": result, "device": device,
            "version": VERSION}


class TuningLog:
    """Append-only writer; safe to share between device worker threads."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A run killed mid-write may leave a partial last line: start ours on a fresh line.
        if self.path.is_file() and self.path.stat().st_size:
            with self.path.open("rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    with self.path.open("a") as g:
                        g.write("\n")

    def append(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=True, separators=(",", ":"))
        with self._lock, self.path.open("a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


def read_log(path: str | os.PathLike) -> list[dict]:
    """All well-formed records (a truncated or foreign line is skipped)."""
    p = Path(path)
    if not p.is_file():
        return []
    out = []
    for line in p.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and rec.get("version") == VERSION and "task" in rec and "config" in rec:
            out.append(rec)
    return out


def cost(rec: dict) -> float | None:
    """Mean of the costs of a successful record, None for an error."""
    r = rec["result"]
    if r.get("error") is not None or not r.get("costs_s"):
        return None
    return sum(r["costs_s"]) / len(r["costs_s"])


def measured_indices(records: Iterable[dict], key: str) -> set[int]:
    """Configs of task `key` that need no new measurement (anything but device_lost)."""
    return {r["config"]["index"] for r in records
            if task_key(r["task"]) == key and r["result"].get("error") != "device_lost"}


def best_records(records: Iterable[dict]) -> dict[str, dict]:
    """Per task key, the fastest successful record (ties: the earliest)."""
    best: dict[str, dict] = {}
    for r in records:
        c = cost(r)
        if c is None:
            continue
        k = task_key(r["task"])
        if k not in best or c < cost(best[k]):
            best[k] = r
    return best


def load_overrides(path: str | os.PathLike) -> Overrides:
    """Task key -> knobs of the best measured config, for `edgec build --tuning-log`."""
    if not Path(path).is_file():
        raise EdgecError(f"tuning log {path} not found")
    try:
        records = read_log(path)
        if not records and Path(path).read_bytes().strip():
            raise EdgecError(f"{path} is not an edgec tuning log (no record of version {VERSION})")
        return {k: dict(r["config"]["knobs"]) for k, r in sorted(best_records(records).items())}
    except (UnicodeDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise EdgecError(f"tuning log {path} is malformed ({type(exc).__name__}: {exc})"[:300]) from None

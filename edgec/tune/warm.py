"""Warm start from other devices' logs (`edgec tune --warm-start LOG`, repeatable).

A record of another log is used when its task key is one of this run's tasks (same kernel,
shapes, target profile and build options: a log of one rpi4 warm-starts another rpi4, never an
x86 host) and its config is in the task's space. Used records train the cost model of their
kernel template before the first batch, one rank group per (log, task), so another device's
absolute speed does not matter, only its order of configs. The other device's best configs are
measured in the task's first batch, right after the default. Warm records are not measured on
this device: they count for neither the trials nor the space covered, and are never written
to this run's log. Everything else (another target, a task this model does not have, a config
outside today's space, `device_lost`) is ignored and counted."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from edgec.errors import EdgecError
from edgec.tune.keys import task_key
from edgec.tune.log import VERSION, cost, read_log
from edgec.tune.space import ConfigSpace
from edgec.tune.tasks import Task


@dataclass
class WarmRecord:
    source: int  # which --warm-start log
    index: int  # in today's space
    knobs: dict
    cost: float | None


@dataclass
class WarmStart:
    logs: int = 0
    by_task: dict[str, list[WarmRecord]] = field(default_factory=dict)
    ignored: Counter = field(default_factory=Counter)  # reason -> records

    @property
    def used(self) -> int:
        return sum(len(v) for v in self.by_task.values())

    def summary(self) -> str:
        why = ", ".join(f"{n} {k}" for k, n in sorted(self.ignored.items()))
        return (f"warm start: {self.used} record(s) of {self.logs} log(s) used"
                + (f"; ignored {sum(self.ignored.values())} ({why})" if self.ignored else ""))

    def best(self, key: str, n: int) -> list[int]:
        """Up to `n` config indices of task `key`, the fastest first: costs relative to each
        log's best for the task (so a faster device does not outrank a slower one)."""
        recs = [r for r in self.by_task.get(key, []) if r.cost is not None]
        top = {r.source: min(x.cost for x in recs if x.source == r.source) for r in recs}
        rel: dict[int, float] = {}
        for r in recs:
            v = r.cost / top[r.source]  # type: ignore[operator]
            rel[r.index] = min(rel.get(r.index, v), v)
        return [i for i, _ in sorted(rel.items(), key=lambda t: (t[1], t[0]))][:n]


def load_warm_start(paths: list[str | os.PathLike], tasks: list[Task]) -> WarmStart:
    """The records of `paths` that match `tasks` (see the module doc)."""
    ws = WarmStart(logs=len(paths))
    by_key = {t.key: t for t in tasks}
    targets = {t.task["target"] for t in tasks}
    spaces: dict[str, ConfigSpace] = {}
    for source, p in enumerate(paths):
        if not Path(p).is_file():
            raise EdgecError(f"--warm-start {p}: no such tuning log")
        try:
            records = read_log(p)
        except (UnicodeDecodeError, OSError) as exc:
            raise EdgecError(f"--warm-start {p}: cannot read it ({type(exc).__name__})") from None
        if not records and Path(p).read_bytes().strip():
            raise EdgecError(f"--warm-start {p}: not an edgec tuning log (no record of version {VERSION})")
        for r in records:
            try:
                key, target = task_key(r["task"]), r["task"]["target"]
                knobs, error = r["config"]["knobs"], r["result"].get("error")
                c = cost(r)
            except (KeyError, TypeError, AttributeError, ZeroDivisionError):
                ws.ignored["malformed"] += 1
                continue
            if error == "device_lost":
                ws.ignored["device_lost"] += 1
            elif target not in targets:
                ws.ignored[f"target {target}"] += 1
            elif key not in by_key:
                ws.ignored["other task"] += 1
            else:
                space = spaces.setdefault(key, by_key[key].space())
                i = space.find(knobs)
                if i is None:
                    ws.ignored["not in space"] += 1
                else:
                    ws.by_task.setdefault(key, []).append(WarmRecord(source, i, space.knobs(i), c))
    return ws

"""Time budgets of whole-model tuning (`edgec tune --budget 10m`).

The run ends within the budget: no batch starts after the deadline (a batch in flight may
finish), and batches are trimmed to the time left. Tasks are tuned one after the other, in the
order `extract_tasks` gives (most FLOPs x nodes first). When a task starts it gets a share of the
time left now: a floor of one first batch plus its default (`batch + 1` configs at the observed
seconds per config), and the rest of the time left split by weight (FLOPs x nodes) over it and
the tasks after it. Time a task does not use (space exhausted, early stop, the trials cap)
stays in the time left, so it rolls over to the tasks after it. When the time left cannot pay
every remaining floor, the tasks split it evenly; a task that has measured nothing still gets
its default measured while the deadline has not passed. Before anything is measured the seconds
per config are a guess: the first task's share is computed again after its first batch."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence

from edgec.errors import EdgecError

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse_duration(text: str) -> float:
    """Seconds of `90s`, `10m`, `1h`, `1h30m`, `2.5m` or a plain number of seconds."""
    s = text.strip().lower().replace(" ", "")
    try:
        secs = float(s)
    except ValueError:
        m = _DURATION.fullmatch(s)
        if not s or m is None or not any(m.groups()):
            raise EdgecError(f"--budget {text!r}: expected a duration such as 90s, 10m, 1h or 1h30m") from None
        secs = sum(float(v or 0) * u for v, u in zip(m.groups(), (3600, 60, 1)))
    if not math.isfinite(secs) or secs <= 0:
        raise EdgecError(f"--budget {text!r}: the budget must be more than 0 seconds")
    return secs


def format_duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{seconds:.0f}s"
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{sec}s" if sec else "")


class Budget:
    """The deadline of a run and the share of each task (tasks start in the order of `weights`)."""

    def __init__(self, seconds: float, weights: Sequence[float], batch: int,
                 clock: Callable[[], float] | None = None, start: float | None = None,
                 guess_s_per_config: float = 1.0):
        self.total = float(seconds)
        self.weights = [max(0.0, float(w)) for w in weights]
        self.batch = batch
        self.clock = clock or (lambda: time.monotonic())  # looked up per call (tests patch it)
        self.start = clock() if start is None else start
        self.deadline = self.start + self.total
        self.guess = guess_s_per_config
        self._configs = 0
        self._seconds = 0.0

    def remaining(self) -> float:
        return self.deadline - self.clock()

    def elapsed(self) -> float:
        return self.clock() - self.start

    def per_config(self) -> float:
        """Observed seconds per config (build + measurement + search), a guess before any."""
        return self._seconds / self._configs if self._configs else self.guess

    def observe(self, configs: int, seconds: float) -> None:
        if configs > 0:
            self._configs += configs
            self._seconds += max(0.0, seconds)

    @property
    def guessing(self) -> bool:
        """No config measured yet: the floors are a guess (the tuner shares again after the
        first batch)."""
        return self._configs == 0

    def share(self, i: int, at: float | None = None) -> float:
        """Seconds for task `i` (0-based) out of what is left at `at` (now), for it and the
        tasks after it."""
        left = max(0.0, self.deadline - (self.clock() if at is None else at))
        rest = self.weights[i:]
        if not rest:
            return 0.0
        floor = (self.batch + 1) * self.per_config()
        if left <= floor * len(rest):
            return left / len(rest)
        total = sum(rest)
        frac = rest[0] / total if total > 0 else 1.0 / len(rest)
        return floor + (left - floor * len(rest)) * frac

    def batch_size(self, want: int, task_left: float, first: bool) -> int:
        """Configs of the next batch: at most `want`, what fits the task's share left and
        the time to the deadline; at least one (its default) for a task that has measured
        nothing yet, while the deadline has not passed (that one may end a little after it)."""
        left = self.remaining()
        if left <= 0 or want <= 0:
            return 0
        spc = max(self.per_config(), 1e-6)
        n = min(want, int(task_left // spc), int(left // spc))
        return max(n, 1 if first else 0)

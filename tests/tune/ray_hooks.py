"""Fault injection for tests/tune/test_farm_ray.py, run inside Ray's worker processes.

`crash_builds` is the Ray instance's `worker_process_setup_hook`: in every worker it wraps
`TaskBuilder.build` so that a build which can claim a token file from
$EDGEC_TEST_CRASH_DIR (an atomic rename, so each token kills exactly one build) kills its
worker process the hard way, as a node running out of memory or losing power would. With no
tokens there, builds run as usual.

`dying_local` makes a device runner that kills its actor's process at its Nth measurement."""

from __future__ import annotations

import os
from pathlib import Path


def _claim(d: Path) -> bool:
    for token in sorted(d.glob("token-*")):
        try:
            token.rename(d / f"claimed-{token.name}-{os.getpid()}")
            return True
        except FileNotFoundError:  # another worker took it first
            continue
    return False


def crash_builds() -> None:
    from edgec.tune.measure import TaskBuilder

    d = os.environ.get("EDGEC_TEST_CRASH_DIR")
    if not d or getattr(TaskBuilder.build, "crash_hook", False):
        return
    real = TaskBuilder.build

    def build(self, index: int, knobs: dict):  # noqa: ANN001, ANN202
        if _claim(Path(d)):
            os._exit(1)
        return real(self, index, knobs)

    build.crash_hook = True  # type: ignore[attr-defined]
    TaskBuilder.build = build  # type: ignore[method-assign]


def dying_local(name: str, die_at: int, work: Path):  # noqa: ANN201
    """A LocalRunner named `name` whose process exits at its `die_at`-th measurement."""
    from edgec.tune.measure import LocalRunner

    class Dying(LocalRunner):
        calls = 0

        def measure(self, builder, batch, opts, emit) -> None:  # noqa: ANN001
            Dying.calls += 1
            if Dying.calls == die_at:
                os._exit(1)
            super().measure(builder, batch, opts, emit)

    r = Dying()
    r.name = name
    return r

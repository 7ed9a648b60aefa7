"""Build options of the sparsity pass (`edgec build --sparsity/--sparse-threshold/
--sparse-code-limit`). `edgec.build` sets them for the duration of one build; the target pass
reads them, so the pass list keeps its signature."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from edgec.errors import EdgecError

MODES = ("auto", "off", "code", "bsr")


@dataclass(frozen=True)
class SparseOptions:
    """mode: "auto" (the cost rule decides per layer), "off" (always dense), "code" / "bsr"
    (force that format for every eligible layer with at least one zero block).
    threshold: |w| <= threshold counts as zero (0.0: exact zeros only; > 0 changes the results of
    the layers that become sparse; dense layers keep their weights as they are).
    Skipped zero blocks mean an inf/NaN input element no longer turns 0 * x into NaN there.
    code_limit: estimated .text bytes above which a weights-in-code layer falls back to BSR."""

    mode: str = "auto"
    threshold: float = 0.0
    code_limit: int = 64 * 1024

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise EdgecError(f"--sparsity {self.mode!r}: expected one of {', '.join(MODES)}")
        if not self.threshold >= 0.0:  # also rejects NaN
            raise EdgecError(f"--sparse-threshold {self.threshold}: must be >= 0")
        if self.code_limit < 0:
            raise EdgecError(f"--sparse-code-limit {self.code_limit}: must be >= 0 bytes")

    def to_attr(self) -> dict:
        return {"mode": self.mode, "threshold": self.threshold, "code_limit": self.code_limit}


_CURRENT: ContextVar[SparseOptions | None] = ContextVar("edgec_sparse_options", default=None)


def current_options() -> SparseOptions:
    return _CURRENT.get() or SparseOptions()


@contextmanager
def sparse_options(opts: SparseOptions) -> Iterator[SparseOptions]:
    token = _CURRENT.set(opts)
    try:
        yield opts
    finally:
        _CURRENT.reset(token)

"""`ConfigSpace`: the knobs of a kernel template as an enumerable list of valid configs, with an
index <-> knobs mapping (the index is what the tuning log and the search use)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from edgec.errors import EdgecError


@dataclass
class ConfigSpace:
    names: tuple[str, ...]
    configs: list[tuple] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._index = {c: i for i, c in enumerate(self.configs)}

    @classmethod
    def product(cls, knobs: dict[str, Sequence], valid: Callable[[dict], bool] = lambda k: True,
                ) -> ConfigSpace:
        names = tuple(knobs)
        configs = [c for c in itertools.product(*knobs.values()) if valid(dict(zip(names, c)))]
        return cls(names, configs)

    def __len__(self) -> int:
        return len(self.configs)

    def knobs(self, index: int) -> dict:
        if not 0 <= index < len(self.configs):
            raise EdgecError(f"config index {index} is outside the space (size {len(self.configs)})")
        return {n: v for n, v in zip(self.names, self.configs[index]) if v is not None}

    def index(self, knobs: dict) -> int:
        i = self.find(knobs)
        if i is None:
            raise EdgecError(f"config {knobs} is not in the space")
        return i

    def find(self, knobs: object) -> int | None:
        """The index of `knobs`, or None when they are not a config of this space (a log
        record from an older space, or a malformed one)."""
        if not isinstance(knobs, dict):
            return None
        return self._index.get(tuple(knobs.get(n) for n in self.names))

    def values(self, name: str) -> list:
        k = self.names.index(name)
        return sorted({c[k] for c in self.configs}, key=lambda v: (v is None, str(type(v)), v or 0))

    def neighbor(self, index: int, rng: random.Random, tries: int = 20) -> int:
        """A valid config differing from `index` in one knob (or a random one if none found)."""
        cur = list(self.configs[index])
        for _ in range(tries):
            k = rng.randrange(len(self.names))
            choices = [v for v in self.values(self.names[k]) if v != cur[k]]
            if not choices:
                continue
            cand = tuple(cur[:k] + [rng.choice(choices)] + cur[k + 1:])
            if cand in self._index:
                return self._index[cand]
        return rng.randrange(len(self.configs))

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
        key = tuple(knobs.get(n) for n in self.names)
        if key not in self._index:
            raise EdgecError(f"config {knobs} is not in the space")
        return self._index[key]

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


def gemv_space(k: int, n: int, lanes: int) -> ConfigSpace:
    """NV column vectors per block x KU unroll x KA accumulator sets (KA divides KU)."""
    max_nv = -(-n // lanes)
    return ConfigSpace.product(
        {"nv": [1, 2, 3, 4, 5, 6, 8], "ku": [1, 2, 4, 8], "ka": [1, 2, 4]},
        lambda c: c["nv"] <= max_nv and c["ka"] <= c["ku"] and c["ku"] % c["ka"] == 0 and c["ka"] <= k
        and c["nv"] * c["ka"] <= 24)


def conv_space(out_channels: int, groups: int, lanes: int) -> ConfigSpace:
    """Row kernel (MR output channels x NRV vectors of columns) and, for groups == 1 with at
    least one vector of output channels, the channel-vectorized kernel (MP pixels x NRV vectors
    of channels). Register spills are allowed: the cost model learns they are slow."""
    rows = [("row", mr, nrv, None) for mr in range(1, 9) for nrv in range(1, 5)]
    oc = [("ocvec", None, nrv, mp) for mp in range(1, 9) for nrv in range(1, 5)
          if groups == 1 and out_channels >= lanes and nrv <= -(-out_channels // lanes)]
    return ConfigSpace(("variant", "mr", "nrv", "mp"), rows + oc)


def space_for(task: dict, lanes: int) -> ConfigSpace:
    if task["kernel"] == "gemv":
        (_, k), (_, n) = task["shapes"][:2]
        return gemv_space(k, n, lanes)
    if task["kernel"] == "conv2d":
        return conv_space(task["shapes"][1][0], task["shapes"][5][0], lanes)
    raise EdgecError(f"no config space for kernel template {task['kernel']!r}")

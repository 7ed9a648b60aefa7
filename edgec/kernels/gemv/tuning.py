"""The GEMV family's schedules: the default heuristic, the tuning space of the "gemv" task and
its shapes by name, shared by the pass (pack.py), the lowering and edgec/tune."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from edgec.options import BuildOptions
from edgec.targets import TargetProfile
from edgec.tune.keys import make_task
from edgec.tune.space import ConfigSpace


class GemvTaskShapes(NamedTuple):
    """The `shapes` of a "gemv" task key ([[1, K], [K, N]], written by `gemv_task`), by name."""

    k: int
    n: int

    @classmethod
    def of(cls, task: dict) -> GemvTaskShapes:
        (_, k), (_, n) = task["shapes"][:2]
        return cls(k, n)


def gemv_task(k: int, n: int, target: str, options: BuildOptions | None = None) -> dict:
    return make_task("gemv", [[1, k], [k, n]], "float32", target, options)


@dataclass(frozen=True)
class GemvSchedule:
    """NV vectors of columns per block, KU k-steps unrolled, KA accumulator sets."""

    nv: int
    ku: int
    ka: int
    lanes: int

    def to_attr(self) -> dict:
        return {"nv": self.nv, "ku": self.ku, "ka": self.ka, "lanes": self.lanes}


def default_gemv_schedule(profile: TargetProfile, k: int, n: int) -> GemvSchedule:
    """Measured on znver3 (AVX2) for 256..1024 square layers: 4 vectors x 2 accumulator sets
    (8 independent FMA chains), k unrolled by 4. Fewer vectors when N is small; 32-register
    targets afford 4 sets."""
    lanes = profile.fp32_lanes
    nv = max(1, min(4, -(-n // lanes)))
    ka = 4 if profile.vector_registers == 32 else 2
    ka = max(1, min(ka, 8 // nv if nv < 8 else 1, k))
    ku = 4 if k >= 4 else 1
    ka = min(ka, ku)
    return GemvSchedule(nv, ku, ka, lanes)


def gemv_space(k: int, n: int, lanes: int) -> ConfigSpace:
    """NV column vectors per block x KU unroll x KA accumulator sets (KA divides KU)."""
    max_nv = -(-n // lanes)
    return ConfigSpace.product(
        {"nv": [1, 2, 3, 4, 5, 6, 8], "ku": [1, 2, 4, 8], "ka": [1, 2, 4]},
        lambda c: c["nv"] <= max_nv and c["ka"] <= c["ku"] and c["ku"] % c["ka"] == 0 and c["ka"] <= k
        and c["nv"] * c["ka"] <= 24)


def knobs_from_schedule(schedule: dict) -> dict:
    return {"nv": schedule["nv"], "ku": schedule["ku"], "ka": schedule["ka"]}

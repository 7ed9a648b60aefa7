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


def gemv_fits(arch: str, regs: int, nv: int, ku: int, ka: int) -> bool:
    """Whether the k loop fits the vector registers (no spills; tests/asm checks it): NV x KA
    accumulators and the input broadcast; x86 FMAs read the weights from memory, aarch64 holds
    a step's NV weight vectors, and armv7 (in-order Cortex-A53 scheduling) loads all NV x KU of
    an iteration ahead of their FMAs (one can take the register its FMA frees) beside KU/4
    input vectors (lane broadcasts). Checked with tests/asm's stack-store finder: AVX2 4x4x2,
    6x4x2, 3x8x4 fit, 8x2x2, 4x4x4 spilled; aarch64 8x4x2, 6x4x4 fit, 8x4x4 spilled; armv7
    4x2x2, 2x4x4 fit, 4x4x2 (the old default: 2 spills per iteration), 3x4x2, 1x8x8 spilled."""
    acc = nv * ka
    if arch == "armv7":
        return acc + nv * ku + -(-ku // 4) <= regs + 1
    return acc + (nv if arch == "aarch64" else 0) + 1 <= regs


def default_gemv_schedule(profile: TargetProfile, k: int, n: int) -> GemvSchedule:
    """Measured on znver3 (AVX2) for 256..1024 square layers: 4 vectors x 2 accumulator sets
    (8 independent FMA chains), k unrolled by 4 (by 2 where 4 does not fit: armv7). Fewer
    vectors when N is small; 32-register targets afford 4 sets."""
    lanes = profile.fp32_lanes
    nv = max(1, min(4, -(-n // lanes)))
    ka = 4 if profile.vector_registers == 32 else 2
    ka = max(1, min(ka, 8 // nv if nv < 8 else 1, k))
    ku = 4 if k >= 4 else 1
    while ku > 1 and not gemv_fits(profile.arch, profile.vector_registers, nv, ku, min(ka, ku)):
        ku //= 2
    ka = min(ka, ku)
    return GemvSchedule(nv, ku, ka, lanes)


def gemv_space(k: int, n: int, lanes: int, profile: TargetProfile | None = None) -> ConfigSpace:
    """NV column vectors per block x KU unroll x KA accumulator sets (KA divides KU); with the
    target's `profile`, only those that fit its registers (`gemv_fits`)."""
    max_nv = -(-n // lanes)
    return ConfigSpace.product(
        {"nv": [1, 2, 3, 4, 5, 6, 8], "ku": [1, 2, 4, 8], "ka": [1, 2, 4]},
        lambda c: c["nv"] <= max_nv and c["ka"] <= c["ku"] and c["ku"] % c["ka"] == 0 and c["ka"] <= k
        and c["nv"] * c["ka"] <= 24
        and (profile is None or gemv_fits(profile.arch, profile.vector_registers, c["nv"], c["ku"], c["ka"])))


def knobs_from_schedule(schedule: dict) -> dict:
    return {"nv": schedule["nv"], "ku": schedule["ku"], "ka": schedule["ka"]}

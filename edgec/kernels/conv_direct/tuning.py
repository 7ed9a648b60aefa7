"""The direct-conv family's schedules: the default heuristics (`default_schedule` for the row
kernel, `ocvec_schedule` for the channel-vectorized one, K blocking and column chunking for big
pointwise convs), the tuning space of the "conv2d" task and the mapping between a schedule attr
and the tuner's knobs, so the pass, the lowering and edgec/tune agree on one set of names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from edgec.options import BuildOptions
from edgec.targets import TargetProfile
from edgec.tune.keys import make_task
from edgec.tune.space import ConfigSpace

ROW, OCVEC = "row", "ocvec"  # the `variant` knob: op ConvDirect or ConvOcvec
VARIANT_OPS = {ROW: "ConvDirect", OCVEC: "ConvOcvec"}


class ConvTaskShapes(NamedTuple):
    """The `shapes` of a "conv2d" task key, by name: `conv_task` writes them in this order."""

    x: list[int]  # NCHW input
    w: list[int]  # [M, C/group, KH, KW]
    strides: list[int]
    pads: list[int]  # [top, left, bottom, right]
    dilations: list[int]
    group: int

    @classmethod
    def of(cls, task: dict) -> ConvTaskShapes:
        x, w, strides, pads, dilations, (group,) = task["shapes"][:6]
        return cls(x, w, strides, pads, dilations, group)


def conv_task(x_shape: tuple[int, ...], w_shape: tuple[int, ...], strides: list[int], pads: list[int],
              dilations: list[int], group: int, target: str, options: BuildOptions | None = None,
              dtype: str = "float32") -> dict:
    """The "conv2d" tuning task of one conv (its shapes in ConvTaskShapes order)."""
    return make_task("conv2d", [list(x_shape), list(w_shape), list(strides), list(pads), list(dilations),
                                [group]], dtype, target, options)


@dataclass(frozen=True)
class DirectConvSchedule:
    """Schedule knobs (explicit and enumerable, for the tuner): MR output channels x NRV vectors."""

    mr: int
    nrv: int
    lanes: int
    kc: int = 0  # input channels per K block (0: the whole reduction in one pass)
    cw: int = 0  # column tiles per chunk (0: no chunking)

    def to_attr(self) -> dict:
        extra = {k: v for k, v in (("kc", self.kc), ("cw", self.cw)) if v}
        return {"mr": self.mr, "nrv": self.nrv, "lanes": self.lanes, **extra}


def tile_fits(arch: str, regs: int, lanes: int, variant: str, rows: int, nrv: int) -> bool:
    """Whether a register tile's hot loop fits the vector registers (no spills; tests/asm checks
    it): ROW is MR output channels x NRV input vectors with one weight broadcast at a time, OCVEC
    is MP pixels x NRV weight vectors with one input broadcast at a time. Besides that, armv7
    (LLVM 20, checked with tests/asm's stack-store finder on every tile) packs the row kernel's
    weight broadcasts four to a q register (conv_direct/lower.py `by_lane`: 4x3 and 6x2 fit,
    7x2 and 3x4 spilled), and the channel-vectorized tile needs 3 more registers (its
    accumulators are copied between the tap and channel loops: 5x2 and 3x3 fit, 6x2 and 4x3
    spilled). x86 AVX2: 4x3 and 6x2 fit, 7x2, 3x4, 5x3 spilled, either kernel; aarch64: up to
    29 registers (6x4, 8x3) fit, in fp32 and in fp16."""
    acc = rows * nrv
    if variant == ROW:
        return acc + nrv + (-(-rows // lanes) if arch == "armv7" else 1) <= regs
    return acc + nrv + 1 + (3 if arch == "armv7" else 0) <= regs


def _rows(profile: TargetProfile, variant: str, nrv: int, lanes: int | None = None) -> int:
    """The most rows (MR or MP, at most 8) of an NRV tile that fit the registers."""
    fit = [r for r in range(1, 9) if tile_fits(profile.arch, profile.vector_registers, lanes or profile.fp32_lanes,
                                               variant, r, nrv)]
    return max(fit, default=1)


def default_schedule(profile: TargetProfile, out_width: int, lanes: int | None = None) -> DirectConvSchedule:
    """`lanes`: elements per vector register (default fp32's; fp16 has twice as many)."""
    lanes = lanes or profile.fp32_lanes
    regs = profile.vector_registers
    nrv = max(1, min(4 if regs == 32 else 3, -(-out_width // lanes)))
    return DirectConvSchedule(_rows(profile, ROW, nrv, lanes), nrv, lanes)


PANEL_MAX_PLANE = 100  # pointwise convs on planes up to 10x10 run channel-vectorized on panels


def ocvec_schedule(profile: TargetProfile, m: int, plane: int, pointwise: bool, lanes: int | None = None) -> dict:
    """Knobs of the channel-vectorized kernel (conv_ocvec.py): MP pixels x NRV channel vectors,
    the tile with the most accumulators that fits (`tile_fits`; ties: more channel vectors,
    x86 AVX2 4x3, AVX-512 and aarch64 6x4, armv7 5x2). Pointwise convs use two vectors (four
    on 32-register targets) and the MP whose tail tile costs least: a tail of r pixels runs
    about as long as max(r, 4) (FMA latency), so 7x7 = 49 pixels take 5-wide tiles (measured
    0.85-0.91x of onnxruntime vs 0.90-0.98x with 6-wide)."""
    lanes, regs = lanes or profile.fp32_lanes, profile.vector_registers
    vectors = -(-m // lanes)
    if not pointwise:
        mp, nrv = max(((_rows(profile, OCVEC, v, lanes), v) for v in range(1, min(4 if regs == 32 else 3, vectors) + 1)),
                      key=lambda t: (t[0] * t[1], t[1]))
        return {"mp": mp, "nrv": nrv, "lanes": lanes}
    nrv = min(4 if regs == 32 else 2, vectors)
    widest = _rows(profile, OCVEC, nrv, lanes)

    def cost(mp: int) -> tuple[int, int]:
        rem = plane % mp
        return (plane - rem) + (max(rem, 4) if rem else 0), -mp

    return {"mp": min(range(max(1, widest - 2), widest + 1), key=cost), "nrv": nrv, "lanes": lanes}


def k_block(channels: int, bytes_per_channel: int, budget: int = 16 << 10) -> int:
    """Input channels per K block so one tile's input rows stay in L1 across output-channel
    blocks (0: no blocking). Blocks must divide the channels; long reductions only (960 -> 320
    at 7x7 measured 1.47x -> 1.25x of onnxruntime with blocks of 160)."""
    target = budget // bytes_per_channel
    if channels < 512 or channels <= target * 3 // 2:
        return 0
    divisors = [d for d in range(64, target + 1) if channels % d == 0]
    return max(divisors) if divisors else 0


def column_chunk(channels: int, out_channels: int, plane: int, cols_per_tile: int, mr: int,
                 itemsize: int = 4) -> int:
    """Column tiles per chunk for pointwise convs whose input and output together overflow the
    cache (>= 4 MB) and that sweep the input three or more times (one sweep per MR output
    channels). Measured vs onnxruntime: 16 -> 96 at 160x160 1.77x -> 0.80x, 16 -> 40 at 160x160
    1.42x -> 0.72x, 32 -> 16 at 160x160 0.94x -> 0.80x; 144 -> 24 at 56x56 (2.1 MB) 0.74x ->
    0.79x and 8 -> 8 at 320x320 (two sweeps) 0.36x -> 0.43x, so those stay unchunked. A
    chunk's input columns stay <= 256 KB."""
    if (channels + out_channels) * plane * itemsize < 4 << 20 or out_channels <= 2 * mr:
        return 0
    cw = min(64, (256 << 10) // (channels * cols_per_tile * itemsize))
    return cw if cw >= 4 and plane // cols_per_tile > cw else 0


def conv_space(out_channels: int, groups: int, lanes: int, profile: TargetProfile | None = None) -> ConfigSpace:
    """Row kernel (MR output channels x NRV vectors of columns) and, for groups == 1 with at
    least one vector of output channels, the channel-vectorized kernel (MP pixels x NRV vectors
    of channels). With the target's `profile`, only tiles that fit its registers (`tile_fits`):
    a spilling tile is never the fast one, and measuring it wastes the budget."""
    def fits(variant: str, rows: int, nrv: int) -> bool:
        return profile is None or tile_fits(profile.arch, profile.vector_registers, lanes, variant, rows, nrv)

    rows = [(ROW, mr, nrv, None) for mr in range(1, 9) for nrv in range(1, 5) if fits(ROW, mr, nrv)]
    oc = [(OCVEC, None, nrv, mp) for mp in range(1, 9) for nrv in range(1, 5)
          if groups == 1 and out_channels >= lanes and nrv <= -(-out_channels // lanes) and fits(OCVEC, mp, nrv)]
    return ConfigSpace(("variant", "mr", "nrv", "mp"), rows + oc)


def schedule_from_knobs(knobs: dict, lanes: int) -> dict:
    """A tuning-log config as a schedule attr: the row kernel (mr, nrv) or ocvec (mp, nrv)."""
    if knobs.get("variant") == "ocvec":
        return {"mp": int(knobs["mp"]), "nrv": int(knobs["nrv"]), "lanes": lanes}
    extra = {k: int(knobs[k]) for k in ("kc", "cw") if knobs.get(k)}
    return {"mr": int(knobs["mr"]), "nrv": int(knobs["nrv"]), "lanes": lanes, **extra}


def knobs_from_schedule(schedule: dict) -> dict:
    """A schedule attr (ConvDirect/ConvOcvec) as tuner knobs (the inverse of schedule_from_knobs)."""
    if "mp" in schedule:
        return {"variant": OCVEC, "mp": schedule["mp"], "nrv": schedule["nrv"]}
    return {"variant": ROW, "mr": schedule["mr"], "nrv": schedule["nrv"]}

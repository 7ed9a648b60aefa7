"""The Winograd family's contract: `ConvWinograd` F(r x r, 3 x 3), written by
edgec/kernels/winograd/pack.py, lowered by lower.py. Its second output is per-task scratch."""

from typing import NotRequired, TypedDict

from edgec.kernels.spec import Activation, Ints, kernel_spec


class WinogradSchedule(TypedDict):
    mr: int
    nrv: int
    lanes: int


@kernel_spec("ConvWinograd", parallel=True)
class ConvWinogradAttrs(TypedDict):
    tile: int  # output tile side r
    pads: Ints  # [top, left] padding the kernel applies itself (at most 1)
    schedule: WinogradSchedule
    threads: int  # scratch is sized for this many tasks
    activation: NotRequired[Activation | None]
    residual: NotRequired[bool]

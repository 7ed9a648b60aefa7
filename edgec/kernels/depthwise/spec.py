"""The depthwise family's contract: `DepthwiseDirect` (one channel per group, padding inside the
kernel) and `MaxPoolDirect`, which runs the same kernel with max instead of multiply-add
(edgec/kernels/depthwise/pool.py writes it)."""

from typing import NotRequired, TypedDict

from edgec.kernels.spec import Activation, Ints, kernel_spec


class DepthwiseSchedule(TypedDict):
    mr: int
    nrv: int  # vectors of output columns per step
    lanes: int


class _Window(TypedDict):
    kernel: Ints
    strides: Ints
    dilations: Ints
    pads: Ints  # [top, left, bottom, right]
    schedule: DepthwiseSchedule


@kernel_spec("DepthwiseDirect", parallel=True)
class DepthwiseDirectAttrs(_Window):
    activation: NotRequired[Activation | None]


@kernel_spec("MaxPoolDirect", parallel=True)
class MaxPoolDirectAttrs(_Window):
    pass

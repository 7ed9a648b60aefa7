"""The direct-conv family's contract: `ConvDirect` (the row kernel: MR output channels x NRV
vectors of output columns), `ConvOcvec` (vectorized across output channels: MP pixels x NRV
vectors of channels) and `PackPanels` (the pixel-panel layout ConvOcvec reads for pointwise
convs). Written by edgec/kernels/conv_direct/pack.py (and deconv.py), lowered by lower.py and
lower_ocvec.py, tuned through the "conv2d" task (edgec/kernels/conv_direct/tuning.py)."""

from typing import NotRequired, TypedDict

from edgec.kernels.spec import Activation, Ints, kernel_spec


class RowSchedule(TypedDict):
    mr: int  # output channels per register block (the packed weight block)
    nrv: int  # vectors of output columns per block
    lanes: int
    kc: NotRequired[int]  # pointwise: input channels per cache block
    cw: NotRequired[int]  # pointwise: columns per cache chunk


class OcvecSchedule(TypedDict):
    mp: int  # output pixels per register block
    nrv: int  # vectors of output channels per block (the packed weight block is nrv * lanes)
    lanes: int


class _DirectConv(TypedDict):
    kernel: Ints
    strides: Ints
    dilations: Ints
    activation: NotRequired[Activation | None]
    residual: NotRequired[bool]  # inputs[3] is added before the activation
    flatten: NotRequired[bool]  # a pointwise conv run as one GEMM over the flattened plane
    task: NotRequired[str]  # the tuning task key (edgec/tune/keys.py)


@kernel_spec("ConvDirect", parallel=True)
class ConvDirectAttrs(_DirectConv):
    schedule: RowSchedule
    group: NotRequired[int]
    shuffle: NotRequired[Ints]  # ConvTranspose as 1x1 conv + depth-to-space [FH, FW] (deconv.py)
    residual_upsample: NotRequired[int]  # the residual is nearest-upsampled by this factor


@kernel_spec("ConvOcvec", parallel=True)
class ConvOcvecAttrs(_DirectConv):
    schedule: OcvecSchedule
    panels: NotRequired[bool]  # inputs[0] is in PackPanels layout


@kernel_spec("PackPanels")
class PackPanelsAttrs(TypedDict):
    pass


DIRECT_CONV_OPS = ("ConvDirect", "ConvOcvec")

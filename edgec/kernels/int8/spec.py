"""The int8 family's contract. From the QDQ fusion (edgec/optimize/qdq.py): `QConv`, `QMatMul`,
`QAdd`, `QGlobalAveragePool`, `QLut` (reference int8 kernels, lower_qconv.py / lower_qmatmul.py /
edgec/kernels/generic/quant.py). From `prepare-qconv` (prepare.py, quads.py): the register-
blocked convs `QConvDirect`/`QConvOcvec` on an input re-laid out by `QConvPrep` (int16 pairs
for vpmaddwd/smlal) or `QConvQuads` (byte quads for vpmaddubsw/sdot, dot="u8s8"/"s8s8"),
`QDepthwiseBytes` and the batch-1 `QGemv`."""

from typing import Literal, NotRequired, TypedDict

from edgec.kernels.spec import Ints, kernel_spec

# pixels per vector step of the QConvQuads layout builder; the pass sizes the quads buffer
# with it (quads.py), the lowering steps by it (lower_quads.py)
QUADS_CHUNK = 16

# byte quads: vpmaddubsw (x86 AVX2, 7-bit weights) / sdot (aarch64 dotprod) / vpdpbusd (x86 VNNI)
Dot = Literal["u8s8", "s8s8", "vnni"]


class _Clamp(TypedDict):
    qmin: NotRequired[int]  # the output clamp a fused activation implies
    qmax: NotRequired[int]


@kernel_spec("QConv")
class QConvAttrs(_Clamp):
    kernel: Ints
    strides: Ints
    pads: Ints
    dilations: Ints
    group: int
    requant: bool


@kernel_spec("QMatMul")
class QMatMulAttrs(_Clamp):
    requant: bool


@kernel_spec("QAdd")
class QAddAttrs(_Clamp):
    pass


@kernel_spec("QGlobalAveragePool")
class QGlobalAveragePoolAttrs(_Clamp):
    pass


@kernel_spec("QLut")
class QLutAttrs(TypedDict):
    """y = table[x]: a float unary op between DQ and Q as a 256-entry table (inputs: x, table)."""
    op: str  # the float op it replaces, for --dump-ir and profiles


class QSchedule(TypedDict):
    mr: int
    nrv: int
    lanes: int


class _QWindow(TypedDict):
    kernel: Ints
    strides: Ints
    dilations: Ints
    pads: Ints
    qmin: int
    qmax: int
    schedule: QSchedule


@kernel_spec("QConvPrep")
class QConvPrepAttrs(_QWindow):
    group: int
    flatten: bool


class _QBlocked(_QWindow):
    group: int
    flatten: bool
    dot: NotRequired[Dot]
    pack_requant: NotRequired[bool]  # requantize with packed int16 math (exact for this layer)


@kernel_spec("QConvDirect", parallel=True)
class QConvDirectAttrs(_QBlocked):
    requant: NotRequired[bool]  # False: int32 out (ConvInteger on int16 pairs, dynamic_conv.py)


@kernel_spec("QConvOcvec", parallel=True)
class QConvOcvecAttrs(_QBlocked):
    requant: NotRequired[bool]  # False: int32 out, zero point at run time (dynamic_conv.py)
    flip: NotRequired[int]  # with requant False: the input byte xor of QConvQuads


@kernel_spec("QConvQuads", parallel=True)
class QConvQuadsAttrs(TypedDict):
    mode: Literal["channels", "spatial"]
    group: int
    pads: Ints
    flatten: bool
    flip: int  # xor applied to every byte (0x80 turns int8 into uint8 or back)
    pad: int  # the stored byte of the input zero point
    quad_kernel: NotRequired[int]  # spatial: kernel width packed into quads
    quad_dilation: NotRequired[int]
    padded_width: NotRequired[int]


@kernel_spec("QDepthwiseBytes", parallel=True)
class QDepthwiseBytesAttrs(_QWindow):
    dot: NotRequired[Dot]
    flip: int
    pad: int
    pack_requant: bool


@kernel_spec("QGemv")
class QGemvAttrs(TypedDict):
    lanes: int
    qmin: int
    qmax: int
    dot: NotRequired[Dot]
    flip: NotRequired[int]
    pad: NotRequired[int]


@kernel_spec("QGemmDot", parallel=True)
class QGemmDotAttrs(TypedDict):
    """MatMulInteger with constant B on byte dots (prepare_qgemm.py explains the encoding)."""
    dot: Dot
    lanes: int
    mr: int
    nv: int
    flip: int  # xor applied to every byte of A (0x80: int8 <-> uint8)
    offset: int  # a = a_enc + offset
    row_sums: bool  # some column has beta != 0

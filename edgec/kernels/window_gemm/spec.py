"""The window-GEMM family's contract: `WindowGemm`, a 1-D convolution with long kernels and
strides and few input channels (an STFT written as a Conv, wav2vec-style feature extractors)
computed as a GEMM over strided windows of the input, with no im2col buffer:

    y[b, n, t] = bias[n] + sum_{c, k} x[b, c, t * stride + k] * W[n, c, k]

A MatMul with a constant B and more than one row is the same loop with C = 1, stride = taps = K
and a row-major output (`layout` "tn"): the wide projections of OCR/CTC heads, a mel filterbank.
W is packed at build time as [n block][c * taps + k][NB] (pack.py), so a register tile of MR
output positions x NV vectors of channels reads one weight vector and broadcasts one input
value per step (lower.py); the last `dot` channels (fewer than a vector) follow as
[channel][c][k] rows, computed as dot products along the window (tail.py)."""

from typing import Literal, TypedDict

from edgec.kernels.spec import Activation, kernel_spec


class WindowGemmSchedule(TypedDict):
    mr: int  # output positions per register tile
    nv: int  # vectors of output channels per block
    lanes: int
    dot: int  # the last output channels, fewer than lanes, computed as dot products (tail.py)


@kernel_spec("WindowGemm", parallel=True)
class WindowGemmAttrs(TypedDict):
    batch: int
    channels: int  # input channels C
    width: int  # input length per channel (the channel stride)
    taps: int  # kernel length K
    stride: int
    rows: int  # output positions T
    n: int  # output channels
    schedule: WindowGemmSchedule
    activation: Activation | None
    layout: Literal["nct", "tn"]  # y[b, n, t] (a conv's NCW) or y[t, n] (a MatMul's rows)

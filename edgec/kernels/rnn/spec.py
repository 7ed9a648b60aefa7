"""The RNN family's contract: `GRU`, `LSTM`, `RNN` as the importer normalizes them (weights in
the packed panel layout of edgec/kernels/rnn/layout.py, one node for all directions) and
`RNNPack` (that layout applied at run time to weights that are not constant)."""

from typing import Any, Literal, NotRequired, TypedDict

from edgec.kernels.spec import kernel_spec

# per direction, per activation slot: (name, alpha, beta)
Activations = list[list[tuple[str, float, float]]]


@kernel_spec("GRU", "LSTM", "RNN")
class RecurrentAttrs(TypedDict):
    seq_length: int
    batch: int
    input_size: int
    hidden: int
    hidden_padded: int  # hidden rounded up to the panel width
    gates: int
    directions: int
    reverse: bool
    layout: int  # ONNX layout attribute (0: [T, B, ...], 1: [B, T, ...])
    linear_before_reset: int
    clip: float | None
    input_forget: int
    panel: int
    activations: Activations
    weights: NotRequired[Literal["fp32", "fp16", "int8"]]  # --weights (edgec/optimize/weight_quant.py)
    sparse: NotRequired[dict[str, Any]]  # block-sparse recurrent weights (edgec/sparsity/rnn.py)
    # LSTM from com.microsoft.DynamicQuantizeLSTM: the state is quantized to uint8 and back
    # before each recurrent product, as onnxruntime does (edgec/importer/contrib/dynamic.py)
    quantized_state: NotRequired[bool]
    # that state times int8 recurrent weights on byte dots (edgec/kernels/rnn/recurrent_dot.py)
    recurrent_dot: NotRequired[Literal["vnni"]]
    projected: NotRequired[bool]  # W x comes as int32 byte-dot sums (inputs 16, 17), recurrent_dot.py


@kernel_spec("RNNPack")
class RNNPackAttrs(TypedDict):
    pass

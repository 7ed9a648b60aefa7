"""Internal ops of the generic family (elementwise, reduce, movement, pool, resize, norm), whose
other nodes are ONNX ops as the importer normalized them: `FusedElementwise` (a chain of
elementwise ops run in one loop, edgec/optimize/elementwise_fusion.py) and `Copy` (a graph
output that is a constant or another output), `MaxPoolIndices` (MaxPool with its Indices
output)."""

from typing import Any, TypedDict

from edgec.kernels.spec import kernel_spec

# one step of a fused program: (ONNX op, operands, attrs); an operand is ("in", k) for the
# node's k-th input or ("t", k) for the result of step k
Step = tuple[str, list[tuple[str, int]], dict[str, Any]]


@kernel_spec("FusedElementwise")
class FusedElementwiseAttrs(TypedDict):
    program: list[Step]


@kernel_spec("MaxPoolIndices")
class MaxPoolIndicesAttrs(TypedDict):  # MaxPool with its Indices output (pool_indices.py)
    kernel: list[int]
    strides: list[int]
    pads: list[int]
    dilations: list[int]
    storage_order: int


@kernel_spec("Copy")
class CopyAttrs(TypedDict):
    pass

"""The sparse family's contract: `SparseDense`, a batch-1 dense layer whose block-sparse weights
are either baked into the instructions (`weights`: InlineWeights, edgec/kernels/sparse/lower.py)
or read from a BSR index (inputs values/kidx/ptr/bias, lower_bsr.py). Written by
edgec/sparsity/transform.py; `sparse` records the cost rule's decision (--dump-ir)."""

from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import numpy as np

from edgec.kernels.spec import Activation, kernel_spec
from edgec.sparsity.blocks import BlockMatrix


@dataclass(frozen=True, eq=False)
class InlineWeights:
    """The weights a weights-in-code kernel bakes into its instructions (not in the blob)."""

    bm: BlockMatrix
    bias: np.ndarray  # (nvec * bw,) float32, zero-padded

    def __repr__(self) -> str:
        return repr(self.bm)


@kernel_spec("SparseDense")
class SparseDenseAttrs(TypedDict):
    k: int
    n: int
    bw: int  # block width (lanes)
    tiles: list[tuple[int, ...]]  # column-vector tiles, one kernel loop each
    sparse: dict[str, Any]  # the cost rule's decision (edgec/sparsity/cost.py)
    activation: NotRequired[Activation | None]
    weights: NotRequired[InlineWeights]  # weights in code
    unroll: NotRequired[int]  # BSR: entries per unrolled step

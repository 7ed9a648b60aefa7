"""Sparse constant weights: block analysis, the per-layer cost rule (dense / BSR / weights in
code), the `sparsify-dense` target pass, and magnitude pruning (`edgec sparsify`)."""

from edgec.options import SparseOptions
from edgec.sparsity.blocks import BlockMatrix, analyze

__all__ = ["BlockMatrix", "SparseOptions", "analyze"]

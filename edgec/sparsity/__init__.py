"""Sparse constant weights: block analysis, the per-layer cost rule (dense / BSR / weights in
code), the `sparsify-dense` target pass, and magnitude pruning (`edgec sparsify`)."""

from edgec.sparsity.blocks import BlockMatrix, analyze
from edgec.sparsity.options import SparseOptions, current_options, sparse_options

__all__ = ["BlockMatrix", "SparseOptions", "analyze", "current_options", "sparse_options"]

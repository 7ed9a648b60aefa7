"""Weights in column blocks, the packed layout of the kernels that broadcast one input value
and multiply it by NB consecutive output columns (Gemv, WindowGemm)."""

from __future__ import annotations

import numpy as np


def pack_column_blocks(w: np.ndarray, bias: np.ndarray | None, nb: int) -> tuple[np.ndarray, np.ndarray]:
    """W (K x N) as [N/NB][K][NB] (columns zero-padded to whole blocks), bias padded alike."""
    k, n = w.shape
    npad = -(-n // nb) * nb
    wfull = np.zeros((k, npad), np.float32)
    wfull[:, :n] = w
    packed = np.ascontiguousarray(wfull.reshape(k, npad // nb, nb).transpose(1, 0, 2))
    b = np.zeros(npad, np.float32)
    if bias is not None:
        b[:n] = bias.reshape(-1)
    return packed, b

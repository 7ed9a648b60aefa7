"""Zero detection in a constant weight W (K x N, y = x @ W) at the granularity the kernels use:
1 x BW blocks (one input element k x BW consecutive outputs), BW = the sparse kernel's vector
width. A block is zero when all its |w| <= threshold (threshold 0: exact zeros)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class BlockMatrix:
    """W with sub-threshold entries zeroed and columns zero-padded to whole blocks."""

    w: np.ndarray  # (K, nvec * bw) float32
    mask: np.ndarray  # (K, nvec) bool: block (k, v) has a non-zero value
    n: int  # real number of columns
    bw: int

    @property
    def k(self) -> int:
        return int(self.w.shape[0])

    @property
    def nvec(self) -> int:
        return int(self.mask.shape[1])

    @property
    def nnz_blocks(self) -> int:
        return int(self.mask.sum())

    @property
    def density(self) -> float:
        """Non-zero blocks / all blocks."""
        return self.nnz_blocks / max(1, self.mask.size)

    @property
    def element_density(self) -> float:
        return float(np.count_nonzero(self.w[:, :self.n])) / max(1, self.k * self.n)

    def block(self, k: int, v: int) -> np.ndarray:
        return self.w[k, v * self.bw:(v + 1) * self.bw]

    def __repr__(self) -> str:  # shown by --dump-ir inside node attributes: keep it short
        return f"<{self.nnz_blocks}/{self.mask.size} blocks 1x{self.bw} of {self.k}x{self.n}>"


def analyze(w: np.ndarray, bw: int, threshold: float = 0.0) -> BlockMatrix:
    w = np.asarray(w, np.float32)
    if w.ndim != 2:
        raise ValueError(f"expected a 2-D weight, got shape {w.shape}")
    k, n = w.shape
    nvec = -(-n // bw)
    full = np.zeros((k, nvec * bw), np.float32)
    full[:, :n] = w
    if threshold > 0.0:
        full[np.abs(full) <= threshold] = 0.0
    full[full == 0.0] = 0.0  # -0.0 -> +0.0: no sign games in constants
    mask = (full.reshape(k, nvec, bw) != 0.0).any(axis=2)
    return BlockMatrix(full, mask, n, bw)


def bsr_pack(bm: BlockMatrix, unroll: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block-sparse columns: for output vector v, blocks ptr[v] .. ptr[v+1] (a multiple of
    `unroll`, padded with zero blocks at k = 0) with input index kidx[p] and values vals[p]."""
    ptr = [0]
    kidx: list[int] = []
    vals: list[np.ndarray] = []
    zero = np.zeros(bm.bw, np.float32)
    for v in range(bm.nvec):
        ks = np.flatnonzero(bm.mask[:, v]).tolist()
        pad = -len(ks) % unroll
        kidx.extend(ks + [0] * pad)
        vals.extend([bm.block(k, v) for k in ks] + [zero] * pad)
        ptr.append(len(kidx))
    values = np.stack(vals) if vals else np.zeros((0, bm.bw), np.float32)
    return (np.asarray(ptr, np.int32), np.asarray(kidx or [0], np.int32),
            np.ascontiguousarray(values if len(values) else np.zeros((1, bm.bw), np.float32)))

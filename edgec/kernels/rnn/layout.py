"""Packed weight layouts of the fused RNN kernels (GRU, LSTM, RNN), as index tables.

Every packed tensor is described by an int32 table of indices into the flat ONNX tensor (-1 =
zero padding). Constant weights are packed with numpy at build time (`apply_table`); weights fed
at run time go through an `RNNPack` node that applies the same table, so there is one layout.

Layout (per direction d, G gates, hidden H padded to Hp, a multiple of 16):
- column n in [0, G*Hp): gate n // Hp, hidden unit n % Hp (units >= H are zero padding), so
  every gate block starts on a vector boundary for any vector width up to 16 lanes;
- a K x N matrix (Wt: K = input size, Rt: K = H) is stored in column panels of P columns,
  [N / P][K][P]: one register tile of the kernel reads one contiguous stream.
"""

from __future__ import annotations

import numpy as np

PAD_UNITS = 16


def padded_hidden(h: int) -> int:
    return -(-h // PAD_UNITS) * PAD_UNITS


def panel_width(hp: int) -> int:
    return next(p for p in (64, 32, 16) if hp % p == 0)


def _columns(g: int, h: int, hp: int) -> tuple[np.ndarray, np.ndarray]:
    """For each packed column: the ONNX row (gate * H + unit), and whether it is real."""
    n = np.arange(g * hp)
    gate, unit = n // hp, n % hp
    return gate * h + np.minimum(unit, h - 1), unit < h


def matrix_table(d: int, g: int, h: int, k: int) -> np.ndarray:
    """ONNX W/R [D][G*H][K] -> packed [D][N/P][K][P] (the transposed matrix, in panels)."""
    hp = padded_hidden(h)
    p, n = panel_width(hp), g * hp
    rows, real = _columns(g, h, hp)
    dirs = np.arange(d)[:, None, None]
    idx = dirs * (g * h * k) + rows[None, :, None] * k + np.arange(k)[None, None, :]  # [D][N][K]
    idx = np.where(real[None, :, None], idx, -1)
    return np.ascontiguousarray(idx.reshape(d, n // p, p, k).transpose(0, 1, 3, 2)).astype(np.int32)


def bias_tables(d: int, g: int, h: int, recurrent_gate: int | None) -> tuple[np.ndarray, np.ndarray,
                                                                           np.ndarray]:
    """ONNX B [D][2*G*H] -> (bx1, bx2, br): bx = B[bx1] + B[bx2] is added to the input projection,
    br to the recurrent product. `recurrent_gate` (GRU linear_before_reset: the h gate) keeps
    its recurrent bias on the recurrent side, because the reset gate multiplies it."""
    hp = padded_hidden(h)
    rows, real = _columns(g, h, hp)
    base = np.arange(d)[:, None] * (2 * g * h)
    wb = np.where(real, base + rows, -1)
    rb = np.where(real, base + g * h + rows, -1)
    gate = np.arange(g * hp) // hp
    rec = (gate == recurrent_gate)[None, :] if recurrent_gate is not None else np.zeros((1, g * hp), bool)
    return (wb.astype(np.int32), np.where(rec, -1, rb).astype(np.int32),
            np.where(rec, rb, -1).astype(np.int32))


def peephole_table(d: int, h: int) -> np.ndarray:
    """ONNX P [D][3*H] (i, o, f) -> packed [D][3][Hp]."""
    hp = padded_hidden(h)
    rows, real = _columns(3, h, hp)
    return np.where(real, np.arange(d)[:, None] * (3 * h) + rows, -1).astype(np.int32)


def apply_table(src: np.ndarray, *tables: np.ndarray) -> np.ndarray:
    flat = np.asarray(src, np.float32).ravel()
    out = np.zeros(tables[0].shape, np.float32)
    for t in tables:
        out += np.where(t >= 0, flat[np.maximum(t, 0)], np.float32(0))
    return out


BSR_BLOCK = 8  # columns per block: one input element x 8 consecutive outputs (1x8)
BSR_UNROLL = 4  # entries per block column are padded to a multiple of this


def recurrent_blocks(packed: np.ndarray, d: int, g: int, h: int,
                     threshold: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The packed recurrent matrix (matrix_table layout) in 1x8 blocks: (blocks [D][K][N/8][8]
    with |w| <= threshold set to zero, nz [D][K][N/8] block has a non-zero value, real [N/8]
    block holds real hidden units (not only padding)). Whether to read R block-sparse is the
    cost rule's choice (edgec/sparsity/rnn.py)."""
    hp = padded_hidden(h)
    p, n = panel_width(hp), g * hp
    dense = np.asarray(packed, np.float32).reshape(d, n // p, h, p).transpose(0, 2, 1, 3)
    dense = dense.reshape(d, h, n // BSR_BLOCK, BSR_BLOCK).copy()
    if threshold > 0.0:
        dense[np.abs(dense) <= threshold] = 0.0
    nz = (dense != 0.0).any(axis=3)
    real = np.arange(n // BSR_BLOCK) * BSR_BLOCK % hp < h
    return dense, nz, real


def bsr_rows(dense: np.ndarray, nz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """recurrent_blocks' (blocks, nz) as block-sparse rows: (ptr [D][N/8 + 1] entry offsets per
    8-column block, idx [E] input element j, vals [E][8]). Each block column's entry list is
    padded to a multiple of BSR_UNROLL with zero entries (j = 0)."""
    d, _, nblk = nz.shape
    ptr, idx, vals = [], [], []
    count = 0
    for di in range(d):
        ptr.append(count)
        for c in range(nblk):
            js = np.flatnonzero(nz[di, :, c])
            pad = -len(js) % BSR_UNROLL
            idx.extend(js.tolist() + [0] * pad)
            vals.append(dense[di, js, c, :])
            vals.append(np.zeros((pad, BSR_BLOCK), np.float32))
            count += len(js) + pad
            ptr.append(count)
    return (np.array(ptr, np.int32), np.array(idx if idx else [0], np.int32),
            np.concatenate(vals).astype(np.float32).reshape(-1, BSR_BLOCK) if count else
            np.zeros((1, BSR_BLOCK), np.float32))

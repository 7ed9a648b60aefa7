"""Which taps of a window fall inside the input: static, per output position (the direct
kernels split borders from the interior with it)."""

from __future__ import annotations


def interior(n_out: int, n_in: int, stride: int, pad: int, dil: int, k: int) -> tuple[int, int]:
    """[lo, hi) of output positions whose k taps all land inside [0, n_in)."""
    lo = -(-pad // stride)
    hi = (n_in - 1 - (k - 1) * dil + pad) // stride + 1
    lo = min(max(lo, 0), n_out)
    return lo, min(max(hi, lo), n_out)


def valid_taps(o: int, n_in: int, stride: int, pad: int, dil: int, k: int) -> list[int]:
    return [t for t in range(k) if 0 <= o * stride - pad + t * dil < n_in]

"""Resize kernels. Source coordinates are computed per axis at compile time, in float32 with
onnxruntime's formula order so nearest-mode ties round the same way:

- nearest: per-axis source index tables -> the shared gather-copy emitter (any dtype);
- linear:  per-axis (lo offset, hi offset, w_lo, w_hi) tables; an output element is the
  multilinear blend of the 2^k corners of its k interpolated axes (bilinear when only H and W
  are resized, trilinear for three, any k in general). Axes that map 1:1 are plain loops.
- cubic:   the same with 4 taps per interpolated axis (Keys' kernel with cubic_coeff_a, taps
  clamped to the edge, or dropped and the weights renormalized with exclude_outside).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from edgec.codegen.broadcast import contiguous_strides
from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.mathfn import FM
from edgec.kernels.generic import resize_nearest, resize_rows
from edgec.kernels.generic.elementwise import load_compute, store_result
from edgec.kernels.generic.gather_copy import PAD, emit_gather_copy

f32 = np.float32


def source_coords(mode: str, n_out: int, n_in: int, scale: float,
                  roi: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """x_original for every output index along one axis (float32 like onnxruntime)."""
    x = np.arange(n_out, dtype=f32)
    s = f32(scale)
    if mode == "tf_crop_and_resize":  # `roi` (start, end) in normalized input coordinates
        start, end = f32(roi[0]), f32(roi[1])
        if n_out == 1:
            return np.full(1, f32(0.5) * (start + end) * f32(n_in - 1), f32)
        return start * f32(n_in - 1) + x * (end - start) * f32(n_in - 1) / f32(n_out - 1)
    if s == 1 and n_out == n_in:  # onnxruntime and onnx.reference: identity, whatever the mode
        return x
    if mode == "asymmetric":
        return x / s
    if mode == "half_pixel":
        return (x + f32(0.5)) / s - f32(0.5)
    if mode == "pytorch_half_pixel":
        return (x + f32(0.5)) / s - f32(0.5) if n_out > 1 else np.zeros(n_out, f32)
    if mode == "tf_half_pixel_for_nn":
        return (x + f32(0.5)) / s
    if mode == "align_corners":
        if n_out == 1:
            return np.zeros(1, f32)
        return x * f32(n_in - 1) / f32(n_out - 1)
    if mode == "half_pixel_symmetric":
        out_w = s * f32(n_in)
        adjustment = f32(n_out) / out_w
        offset = f32(n_in) / f32(2) * (f32(1) - adjustment)
        # onnxruntime does this last step in double and rounds once to float.
        return (np.float64(offset) + (x.astype(np.float64) + 0.5) / np.float64(s) - 0.5).astype(f32)
    raise NotImplementedError(f"Resize coordinate_transformation_mode {mode}")


def _round_half_away(x: np.ndarray) -> np.ndarray:
    """std::round on float32 values: floor(|x| + 0.5) in float64 is exact (no float32 carry)."""
    x64 = x.astype(np.float64)
    return np.sign(x64) * np.floor(np.abs(x64) + 0.5)


def nearest_index(x: np.ndarray, rule: str, downsample: bool, n_in: int) -> np.ndarray:
    if rule == "simple":  # opset-10 Resize / Upsample
        idx = np.ceil(x) if downsample else np.trunc(x)
    elif rule == "round_prefer_floor":
        half = x == np.trunc(x) + f32(0.5)
        idx = np.where(half, np.floor(x), _round_half_away(x))
    elif rule == "round_prefer_ceil":  # std::round: halves away from zero
        idx = _round_half_away(x)
    elif rule == "floor":
        idx = np.floor(x)
    elif rule == "ceil":
        idx = np.ceil(x)
    else:
        raise NotImplementedError(f"Resize nearest_mode {rule}")
    return np.clip(idx.astype(np.int64), 0, n_in - 1)


@dataclass
class LinearAxis:
    n: int
    dst_stride: int
    step: int = 0  # plain axis: src offset = step * i
    taps: list[np.ndarray] | None = None  # interpolated axis: src offsets per tap and index
    weights: list[np.ndarray] | None = None  # and the tap weights

    @property
    def lo(self) -> np.ndarray | None:  # an interpolated axis has taps
        return None if self.taps is None else self.taps[0]


def linear_axis(x: np.ndarray, n_in: int, stride: int, dst_stride: int) -> LinearAxis:
    """onnxruntime's bilinear setup: clamp x into the input, lo = trunc, hi = lo + 1 (clamped),
    weights are the distances to the other neighbour (0.5/0.5 when both are the edge pixel)."""
    n = len(x)
    xc = np.clip(x, f32(0), f32(n_in - 1))
    lo = np.minimum(xc.astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    w_lo = np.abs(xc - hi.astype(f32)).astype(f32)
    w_hi = np.abs(xc - lo.astype(f32)).astype(f32)
    same = lo == hi
    w_lo[same], w_hi[same] = f32(0.5), f32(0.5)
    # 1:1 mapping (lo == i, no weight on hi; lo == hi only at the last pixel, 0.5a + 0.5a == a).
    if n == n_in and (lo == np.arange(n)).all() and (w_hi[~same] == 0).all():
        return LinearAxis(n, dst_stride, step=stride)
    return LinearAxis(n, dst_stride, taps=[lo * stride, hi * stride], weights=[w_lo, w_hi])


def cubic_axis(x: np.ndarray, n_in: int, stride: int, dst_stride: int, a: float,
               exclude_outside: bool) -> LinearAxis:
    """Keys' cubic convolution as onnxruntime/onnx.reference: taps floor(x) - 1 .. floor(x) + 2,
    weights from the fractional part (in float64), out-of-range taps clamped to the edge pixel,
    or given weight 0 and the rest renormalized when `exclude_outside`."""
    x64 = x.astype(np.float64)
    base = np.floor(x64)
    r = x64 - base
    dist = [r + 1, r, 1 - r, 2 - r]

    def kernel(d: np.ndarray) -> np.ndarray:
        d = np.abs(d)
        near = ((a + 2) * d - (a + 3)) * d * d + 1
        far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
        return np.where(d <= 1, near, np.where(d < 2, far, 0.0))

    w = np.stack([kernel(d) for d in dist])  # [4][n]
    idx = np.stack([base.astype(np.int64) - 1 + j for j in range(4)])
    if exclude_outside:
        w = np.where((idx < 0) | (idx >= n_in), 0.0, w)
        w = w / w.sum(axis=0, keepdims=True)
    idx = np.clip(idx, 0, n_in - 1)
    if len(x) == n_in and (idx[1] == np.arange(n_in)).all() and (w[1] == 1).all() and not w[[0, 2, 3]].any():
        return LinearAxis(len(x), dst_stride, step=stride)
    return LinearAxis(len(x), dst_stride, taps=[t * stride for t in idx], weights=[wj.astype(f32) for wj in w])


def antialias_axis(x: np.ndarray, n_in: int, scale: float, stride: int, dst_stride: int, cubic_a: float | None,
                   exclude_outside: bool) -> LinearAxis:
    """Resize with antialias=1 as the ONNX spec (onnx.reference) defines it: when downsampling,
    the linear (triangle) or cubic filter is stretched by 1/scale, so each output averages
    ~1/scale inputs; taps are the n input pixels nearest x (edge pixels repeat past the
    border), weights normalized to sum 1."""
    s = min(float(scale), 1.0)
    if cubic_a is None:
        start = int(np.floor(-1 / s) + 1)
        offsets = np.arange(start, 2 - start)
    else:
        start = int(np.floor(-2 / s) + 1)
        offsets = np.arange(start, 2 - start)

    def coeffs(ratio: float) -> np.ndarray:
        args = (offsets - ratio) * s
        if cubic_a is None:
            w = np.clip(1 - np.abs(args), 0, 1)
        else:
            a, d = cubic_a, np.abs(args)
            w = np.where(d <= 1, ((a + 2) * d - (a + 3)) * d * d + 1,
                         np.where(d < 2, ((a * d - 5 * a) * d + 8 * a) * d - 4 * a, 0.0))
        return w / w.sum()

    n = len(offsets)
    pad = -(-n // 2)
    taps, weights = np.zeros((n, len(x)), np.int64), np.zeros((n, len(x)), np.float64)
    for i, xo in enumerate(x.astype(np.float64)):
        base = np.floor(xo)
        w = coeffs(1.0 if xo == base else xo - base)
        cand = range(max(-pad, int(base) - n - 1), min(n_in + pad, int(base) + n + 2))
        idx = np.array(sorted(sorted(cand, key=lambda j: (abs(xo - j), j))[:n]))
        if exclude_outside:
            w = np.where((idx < 0) | (idx >= n_in), 0.0, w)
            w = w / w.sum()
        taps[:, i], weights[:, i] = np.clip(idx, 0, n_in - 1), w
    return LinearAxis(len(x), dst_stride, taps=[t * stride for t in taps], weights=[w.astype(f32) for w in weights])


def _merge_plain(axes: list[LinearAxis]) -> list[LinearAxis]:
    out: list[LinearAxis] = []
    for a in axes:
        if a.lo is None and a.n == 1:
            continue
        p = out[-1] if out else None
        if (p is not None and p.lo is None and a.lo is None and p.step == a.step * a.n
                and p.dst_stride == a.dst_stride * a.n):
            out[-1] = LinearAxis(p.n * a.n, a.dst_stride, step=a.step)
        else:
            out.append(a)
    return out


class _Linear:
    def __init__(self, kc: KernelContext, src: str, dst: str, axes: list[LinearAxis]):
        self.kc, self.b, self.src, self.dst, self.axes = kc, kc.b, src, dst, axes

    def tload(self, data: np.ndarray, i: ir.Value, hint: str) -> ir.Value:
        if data.dtype.kind == "i":
            data = data.astype(np.int32)
        return self.kc.load_at(self.kc.table(data, hint), i)

    def add(self, x: ir.Value, y: ir.Value) -> ir.Value:
        return self.b.add(x, y, flags=["nsw"])

    def level(self, d: int, bases: list[ir.Value], weights: list[tuple[ir.Value, ...]],
              dst_off: ir.Value) -> None:
        a, b, kc = self.axes[d], self.b, self.kc
        with kc.loop(a.n, name=f"r{d}") as i:
            o = self.add(dst_off, b.mul(i, kc.idx(a.dst_stride), flags=["nsw"]))
            if a.taps is None:
                off = b.mul(i, kc.idx(a.step), flags=["nsw"])
                nb, nw = [self.add(p, off) for p in bases], weights
            else:
                k = len(a.taps)
                names = (("lo", "hi"), ("wl", "wh")) if k == 2 else \
                    (tuple(f"t{j}" for j in range(k)), tuple(f"w{j}" for j in range(k)))
                offs = [self.tload(t, i, nm) for t, nm in zip(a.taps, names[0])]
                nb = [self.add(p, off) for off in offs for p in bases]
                nw = [*weights, tuple(self.tload(w, i, nm) for w, nm in zip(a.weights, names[1]))]
            if d + 1 < len(self.axes):
                self.level(d + 1, nb, nw, o)
            else:
                self.blend(nb, nw, o)

    def blend(self, bases: list[ir.Value], weights: list[tuple[ir.Value, ...]],
              dst_off: ir.Value) -> None:
        b = self.b
        vals = [load_compute(self.kc, self.src, p) for p in bases]
        # The newest (innermost) interpolated axis is the most significant digit of the tap index.
        for ws in reversed(weights):
            size = len(vals) // len(ws)
            out = []
            for q in range(size):
                acc = b.fmul(ws[0], vals[q], flags=FM)
                for j in range(1, len(ws)):
                    acc = b.fadd(acc, b.fmul(ws[j], vals[q + j * size], flags=FM), flags=FM)
                out.append(acc)
            vals = out
        store_result(self.kc, self.dst, dst_off, vals[0])


@lowering("Resize")
def lower_resize(kc: KernelContext) -> None:
    x, y = kc.inputs[0], kc.outputs[0]
    in_shape, out_shape = kc.shape(x), kc.shape(y)
    if 0 in out_shape:
        return
    st = contiguous_strides(in_shape)
    mode, coord = kc.attrs["mode"], kc.attrs["coordinate_transformation_mode"]
    scales = kc.attrs["scales"]
    rank = len(in_shape)
    roi = kc.attrs.get("roi") or [0.0] * rank + [1.0] * rank
    coords = [source_coords(coord, o, i, s, (roi[d], roi[rank + d]))
              for d, (o, i, s) in enumerate(zip(out_shape, in_shape, scales))]
    # tf_crop_and_resize: an output whose source lies outside the input is extrapolation_value
    outside = [(c < 0) | (c > i - 1) if coord == "tf_crop_and_resize" else np.zeros(len(c), bool)
               for c, i in zip(coords, in_shape)]
    extrapolation = float(kc.attrs.get("extrapolation_value", 0.0))
    if mode == "nearest":
        tables = [np.where(out, PAD, nearest_index(c, kc.attrs["nearest_mode"], s < 1, i) * stride)
                  for c, s, i, stride, out in zip(coords, scales, in_shape, st, outside)]
        up = resize_nearest.factor(tables, in_shape, out_shape, st)
        if up:  # whole-factor upsampling of H and W (FPN necks): vector rows, no gather
            resize_nearest.emit(kc, x, y, up)
        else:
            emit_gather_copy(kc, x, y, tables, pad_value=extrapolation)
        return
    if kc.dtype(x) != np.float32:
        raise NotImplementedError(f"{mode} Resize of {kc.dtype(x)}")
    if kc.attrs.get("antialias"):
        a = kc.attrs["cubic_coeff_a"] if mode == "cubic" else None
        excl = bool(kc.attrs.get("exclude_outside", 0))
        axes = [antialias_axis(c, i, sc, s, ds, a, excl) if sc < 1 else
                (linear_axis(c, i, s, ds) if a is None else cubic_axis(c, i, s, ds, a, excl))
                for c, i, sc, s, ds in zip(coords, in_shape, scales, st, contiguous_strides(out_shape))]
    elif mode == "cubic":
        a, excl = kc.attrs["cubic_coeff_a"], bool(kc.attrs["exclude_outside"])
        axes = [cubic_axis(c, i, s, ds, a, excl)
                for c, i, s, ds in zip(coords, in_shape, st, contiguous_strides(out_shape))]
    else:
        axes = [linear_axis(c, i, s, ds)
                for c, i, s, ds in zip(coords, in_shape, st, contiguous_strides(out_shape))]
    axes = _merge_plain(axes)
    lanes = kc.target.fp32_lanes
    if not axes:  # a single element
        kc.store(y, 0, kc.load(x, 0))
    elif mode == "linear" and not kc.attrs.get("antialias") and resize_rows.fits(axes, lanes):
        resize_rows.emit(kc, x, y, axes, lanes)  # short rows: a row per vector operation
    else:
        _Linear(kc, x, y, axes).level(0, [kc.idx(0)], [], kc.idx(0))
    _fill_outside(kc, x, y, outside, extrapolation)


def _fill_outside(kc: KernelContext, x: str, y: str, outside: list[np.ndarray], value: float) -> None:
    """Overwrite the outputs whose source lies outside the input along some axis, one slab per
    contiguous run of such indices (the interpolation wrote clamped values there first)."""
    shape = kc.shape(y)
    ost = contiguous_strides(shape)
    for d, out in enumerate(outside):
        k = 0
        while k < len(out):
            if not out[k]:
                k += 1
                continue
            j = k
            while j < len(out) and out[j]:
                j += 1
            tables = [np.full(j - k if e == d else n, PAD, np.int64) for e, n in enumerate(shape)]
            emit_gather_copy(kc, x, y, tables, dst_strides=ost, dst_offset=k * ost[d], pad_value=value)
            k = j


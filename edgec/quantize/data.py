"""Calibration data: a .npz with one array per model input (first dim = samples), or a directory
of .npz files (same layout, concatenated) and/or .npy files (single-input models: each file one
sample or a stack of samples). Returns one feed dict per sample, shaped like the model's inputs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx

from edgec.errors import EdgecError


def model_inputs(model: onnx.ModelProto) -> dict[str, tuple[list[int | None], np.dtype]]:
    """Non-initializer graph inputs: name -> (dims, None for symbolic ones; numpy dtype)."""
    inits = {i.name for i in model.graph.initializer}
    out = {}
    for i in model.graph.input:
        if i.name in inits:
            continue
        tt = i.type.tensor_type
        # an unset dim, a symbolic one or an exporter's -1 is "any size"
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else None
                for d in tt.shape.dim]
        out[i.name] = (dims, np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)))
    return out


def _samples(name: str, arr: np.ndarray, dims: list[int | None], src: str) -> list[np.ndarray]:
    """Split `arr` into samples shaped like `dims` (batch-1 inputs: first dim = samples)."""
    def fits(shape: tuple[int, ...]) -> bool:
        return len(shape) == len(dims) and all(d is None or d == s for d, s in zip(dims, shape))

    if fits(arr.shape) and dims and dims[0] not in (None, 1):
        return [arr]  # one sample with a fixed batch > 1
    if arr.ndim == len(dims) and fits((1, *arr.shape[1:])):
        return [arr[i:i + 1] for i in range(arr.shape[0])]
    if arr.ndim == len(dims) + 1 and fits(arr.shape[1:]):
        return [arr[i] for i in range(arr.shape[0])]
    want = "x".join("?" if d is None else str(d) for d in dims)
    raise EdgecError(f"calibration data {src}: array for input {name!r} has shape "
                     f"{'x'.join(map(str, arr.shape))}, expected N samples of {want}")


def load_calibration(path: str | os.PathLike, model: onnx.ModelProto,
                     limit: int | None = None) -> list[dict[str, np.ndarray]]:
    """Feeds (one dict per sample) for `model` from `path`; clear errors for missing, empty or
    mismatched data."""
    p = Path(path)
    inputs = model_inputs(model)
    if not p.exists():
        raise EdgecError(f"calibration data not found: {p}")
    files = sorted(f for f in p.iterdir() if f.suffix in (".npz", ".npy")) if p.is_dir() else [p]
    if not files:
        raise EdgecError(f"calibration directory {p} has no .npz or .npy files")
    per_input: dict[str, list[np.ndarray]] = {n: [] for n in inputs}
    for f in files:
        try:
            if f.suffix == ".npz":
                with np.load(f, allow_pickle=False) as z:
                    arrays = {k: z[k] for k in z.files}
                unknown = sorted(set(arrays) - set(inputs))
                if unknown:
                    raise EdgecError(f"calibration data {f}: arrays {unknown} are not model inputs "
                                     f"(inputs: {sorted(inputs)})")
            elif f.suffix == ".npy":
                if len(inputs) != 1:
                    raise EdgecError(f"calibration data {f}: .npy files only for single-input models; "
                                     f"use a .npz with arrays named {sorted(inputs)}")
                arrays = {next(iter(inputs)): np.load(f, allow_pickle=False)}
            else:
                raise EdgecError(f"calibration data {f}: expected a .npz file or a directory")
        except (ValueError, OSError) as exc:
            raise EdgecError(f"cannot read calibration data {f}: {exc}") from None
        for name, arr in arrays.items():
            dims, dtype = inputs[name]
            if not np.issubdtype(arr.dtype, np.number) and arr.dtype != np.bool_:
                raise EdgecError(f"calibration data {f}: array {name!r} is not numeric ({arr.dtype})")
            per_input[name] += [s.astype(dtype, copy=False) for s in _samples(name, arr, dims, str(f))]
    counts = {n: len(v) for n, v in per_input.items()}
    if not any(counts.values()):
        raise EdgecError(f"calibration data {p} is empty (no samples)")
    missing = sorted(n for n, c in counts.items() if c == 0)
    if missing:
        raise EdgecError(f"calibration data {p} has no samples for input(s) {missing}")
    if len(set(counts.values())) != 1:
        raise EdgecError(f"calibration data {p}: inputs have different sample counts {counts}")
    n = next(iter(counts.values()))
    feeds = [{k: v[i] for k, v in per_input.items()} for i in range(n)]
    return feeds[:limit] if limit else feeds

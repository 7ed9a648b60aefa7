"""Mutations of values: NaN/Inf/huge numbers in weights, shape operands (Reshape shapes,
Resize scales, Gather indices) and quantization parameters (scales, zero points)."""

from __future__ import annotations

import random

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper


def _float_inits(m: onnx.ModelProto) -> list[TensorProto]:
    return [t for t in m.graph.initializer if t.data_type == TensorProto.FLOAT] or list(
        m.graph.initializer
    )


# ---- NaN / Inf, shape operands, quantization -----------------------------------------------------
def nan_weights(m: onnx.ModelProto, rng: random.Random) -> str:
    t = rng.choice(
        [
            t
            for t in m.graph.initializer
            if t.data_type == TensorProto.FLOAT
            and t.name not in ("scales",)
            and not t.name.endswith("s")
        ]
        or _float_inits(m)
    )
    arr = numpy_helper.to_array(t).copy()
    if arr.dtype.kind != "f" or not arr.size:
        return f"{t.name}: not a float tensor, unchanged"
    value = rng.choice([np.nan, np.inf, -np.inf, 1e30])  # 1e30: huge, but sums do not overflow
    flat = arr.reshape(-1)
    for _ in range(rng.choice([1, 1, 3])):
        flat[rng.randrange(flat.size)] = value
    t.CopyFrom(numpy_helper.from_array(arr, t.name))
    return f"{t.name}: elements set to {value}"


def shape_operands(m: onnx.ModelProto, rng: random.Random) -> str:
    names = {
        "shape": [
            [1, -1, -1],
            [0, 3, 4],
            [1, 3, 2**62],
            [-5, 3, 4],
            [1, 12, 1, 1, 1, 1, 1, 1, 1],
            [1, 2, 4],
            [2**62, 2**62, 4],
        ],
        "scales": [
            [1, 1, np.nan, 2],
            [1, 1, np.inf, 2],
            [1, 1, 0, 2],
            [1, 1, -2, 2],
            [1, 1, 2],
            [1, 1, 1e9, 1e9],
            [1, 1, 1e-30, 2],
            [1, 1, 2.5, 2],
        ],
        "idx": [[6, 0, 1], [-7, 0, 1], [2**62, 0, 0], [-(2**63), 0, 0], [0]],
    }
    inits = [t for t in m.graph.initializer if t.name in names]
    if not inits:
        return nan_weights(m, rng)
    t = rng.choice(inits)
    values = rng.choice(names[t.name])
    dtype = numpy_helper.to_array(t).dtype
    t.CopyFrom(
        numpy_helper.from_array(
            np.array(values, dtype=dtype if dtype.kind == "f" else np.int64), t.name
        )
    )
    return f"{t.name} -> {values}"


def quant_params(m: onnx.ModelProto, rng: random.Random) -> str:
    scales = [
        t for t in m.graph.initializer if t.name.endswith("s") and t.data_type == TensorProto.FLOAT
    ]
    zps = [t for t in m.graph.initializer if t.name.endswith("z")]
    if not scales:
        return nan_weights(m, rng)
    how = rng.choice(["scale", "scale", "zp_dtype", "zp_shape", "scale_shape", "zp_range"])
    t = rng.choice(scales)
    if how == "scale":
        v = rng.choice([0.0, -0.02, np.nan, np.inf, -np.inf, 1e-45, 3e38, -0.0])
        t.CopyFrom(numpy_helper.from_array(np.array(v, np.float32), t.name))
        return f"{t.name} = {v}"
    if how == "scale_shape":
        t.CopyFrom(
            numpy_helper.from_array(np.full(rng.choice([2, 3, 4]), 0.02, np.float32), t.name)
        )
        return f"{t.name}: per-channel shape {list(t.dims)}"
    z = rng.choice(zps)
    if how == "zp_dtype":
        arr = numpy_helper.to_array(z)
        other = np.int8 if arr.dtype == np.uint8 else np.uint8
        z.CopyFrom(numpy_helper.from_array(arr.astype(other), z.name))
        return f"{z.name}: dtype -> {np.dtype(other).name}"
    if how == "zp_shape":
        z.CopyFrom(numpy_helper.from_array(np.zeros(3, numpy_helper.to_array(z).dtype), z.name))
        return f"{z.name}: shape [3]"
    z.raw_data = b""
    z.int32_data.append(rng.choice([300, -300, 2**31 - 1]))
    return f"{z.name}: int32_data out of range {list(z.int32_data)}"

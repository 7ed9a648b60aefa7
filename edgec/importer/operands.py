"""Checks on constant operands, run by constant folding on every node before it is evaluated.

Scales, zero points and shape-like operands are data: a NaN or negative quantization scale
makes edgec and onnxruntime disagree silently (the spec requires positive scales), a NaN
Resize scale or a negative Expand shape has no meaning, and a ConstantOfShape / Tile / Range
whose operands ask for 2**40 elements would be allocated by the reference evaluator at build
time. Each becomes a ModelError naming the node and the operand.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgec.errors import ModelError
from edgec.importer.validate import MAX_DIM, MAX_TENSOR_BYTES, show, where

# Input indices of the quantization scales of each op.
_SCALES = {"QuantizeLinear": (1,), "DequantizeLinear": (1,), "QLinearConv": (1, 4, 6),
           "QLinearMatMul": (1, 4, 6)}
# Integer operands that are shapes or counts: (input index, smallest allowed value).
_SHAPE_LIKE = {"Reshape": ((1, -1),), "Expand": ((1, 0),), "ConstantOfShape": ((0, 0),),
               "Tile": ((1, 0),), "OneHot": ((1, 1),), "TopK": ((1, 0),), "Pad": ((1, -MAX_DIM),)}
# A Loop evaluated at build time runs this many iterations at most.
MAX_FOLD_LOOP = 1 << 16
# Multiply-adds a build-time evaluation of a constant Conv / MatMul may cost: above it the node
# is compiled like any other (the reference evaluator would take minutes).
MAX_FOLD_MACS = 1 << 32

Shapes = Callable[[str], tuple[int, ...] | None]


class _LazyConsts(Mapping):
    """Initializers and Constant-node values by name, converted to numpy only when a check
    reads them (a scale or a shape, not the weights)."""

    def __init__(self, graph: onnx.GraphProto):
        self._tensors = {t.name: t for t in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output:
                for a in node.attribute:
                    if a.name == "value" and a.HasField("t"):
                        self._tensors[node.output[0]] = a.t
        self._cache: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = numpy_helper.to_array(self._tensors[name])
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def __contains__(self, name: object) -> bool:
        return name in self._tensors


def check_graph_operands(graph: onnx.GraphProto, opset: int) -> None:
    """check_operands on the operands that are constant in the file, before shape inference
    turns a NaN scale into an absurd inferred shape with a less useful message."""
    consts = _LazyConsts(graph)
    for node in graph.node:
        if node.domain in ("", "ai.onnx"):
            check_operands(node, consts, opset)


def _const(node: onnx.NodeProto, index: int, consts: Mapping[str, np.ndarray]) -> np.ndarray | None:
    name = node.input[index] if index < len(node.input) else ""
    return np.asarray(consts[name]) if name and name in consts else None


def _first_bad(values: np.ndarray, ok: np.ndarray) -> object:
    bad = values[~ok]
    return bad.ravel()[0].item() if bad.size else None


_MIN_SCALE, _MAX_SCALE = float(np.finfo(np.float32).tiny), 1e29


def _check_scales(node: onnx.NodeProto, consts: Mapping[str, np.ndarray]) -> None:
    for k in _SCALES.get(node.op_type, ()):
        s = _const(node, k, consts)
        if s is None or s.dtype.kind != "f" or not s.size:
            continue
        v = s.astype(np.float64)
        bad = _first_bad(v, np.isfinite(v) & (v > 0))
        if bad is not None:
            raise ModelError(f"{where(node)}: scale {show(node.input[k])} holds {bad}; "
                             "quantization scales must be positive and finite")
        # Beyond these, dequantized values (an int32 bias times its scale) or requantization
        # multipliers (a ratio of scales) overflow float32: the results would be inf, differently
        # in every engine.
        bad = _first_bad(v, (v >= _MIN_SCALE) & (v <= _MAX_SCALE))
        if bad is not None:
            raise ModelError(f"{where(node)}: scale {show(node.input[k])} holds {bad}; expected "
                             f"{_MIN_SCALE:g} to {_MAX_SCALE:g} (beyond, float32 overflows)")
    z = _const(node, 2, consts) if node.op_type == "DequantizeLinear" else None
    if z is not None and z.dtype == np.int32 and z.size and np.any(z != 0):
        # The spec dequantizes int32 data (biases) without a zero point: it must be 0.
        raise ModelError(f"{where(node)}: int32 zero point {show(node.input[2])} holds "
                         f"{_first_bad(z, z == 0)}; expected 0 for int32 data")


def _check_resize(node: onnx.NodeProto, consts: Mapping[str, np.ndarray], opset: int) -> None:
    if node.op_type == "Upsample":
        attrs = {a.name: list(a.floats) for a in node.attribute
                 if a.name == "scales" and a.type == onnx.AttributeProto.FLOATS}
        scales = [np.asarray(attrs["scales"], np.float64)] if "scales" in attrs else []
        scales += [s.astype(np.float64) for s in [_const(node, 1, consts)] if s is not None]
        sizes = None
    else:
        index = 1 if opset < 11 else 2
        scales = [s.astype(np.float64) for s in [_const(node, index, consts)] if s is not None]
        sizes = _const(node, 3, consts) if opset >= 11 else None
    for s in scales:
        if s.dtype.kind == "f" and s.size:
            bad = _first_bad(s, np.isfinite(s) & (s > 0))
            if bad is not None:
                raise ModelError(f"{where(node)}: scale {bad} is not a positive finite number")
    if sizes is not None and sizes.size:
        bad = _first_bad(sizes, (sizes >= 0) & (sizes <= MAX_DIM))
        if bad is not None:
            raise ModelError(f"{where(node)}: size {bad} is out of range (expected 0 to {MAX_DIM})")


def check_operands(node: onnx.NodeProto, consts: Mapping[str, np.ndarray], opset: int) -> None:
    """Every check on `node`'s constant operands (operands not constant yet are skipped)."""
    _check_scales(node, consts)
    if node.op_type in ("Resize", "Upsample"):
        _check_resize(node, consts, opset)
    for k, lo in _SHAPE_LIKE.get(node.op_type, ()):
        if node.op_type == "Pad" and opset < 11:
            continue
        v = _const(node, k, consts)
        if v is None or not v.size:
            continue
        if v.dtype.kind == "f":
            f = v.astype(np.float64)
            bad = _first_bad(f, np.isfinite(f))
            if bad is not None:
                raise ModelError(f"{where(node)}: operand {show(node.input[k])} holds {bad}; "
                                 "expected finite numbers")
        if v.dtype.kind not in "iuf":
            continue
        bad = _first_bad(v, (v >= lo) & (v <= MAX_DIM))
        if bad is not None:
            raise ModelError(f"{where(node)}: operand {show(node.input[k])} holds {bad}; expected "
                             f"{lo} to {MAX_DIM}")
    if node.op_type == "Range":
        for k in range(3):
            v = _const(node, k, consts)
            if v is not None and v.dtype.kind == "f" and not np.all(np.isfinite(v)):
                raise ModelError(f"{where(node)}: operand {show(node.input[k])} is not finite")
        delta = _const(node, 2, consts)
        if delta is not None and delta.size and not np.any(delta):
            raise ModelError(f"{where(node)}: delta is 0 (the range would never end)")


def _count(dims: list[int] | tuple[int, ...]) -> int:
    return math.prod(max(0, int(d)) for d in dims)


def _estimate(node: onnx.NodeProto, consts: Mapping[str, np.ndarray],
              shape_of: Shapes) -> int | None:
    """Elements of the first output of a value-dependent op, from its constant operands."""
    op = node.op_type
    x = _const(node, 0, consts)
    if op == "ConstantOfShape" and x is not None:
        return _count(x.ravel().tolist())
    if op == "Range":
        start, limit, delta = (_const(node, k, consts) for k in range(3))
        if any(v is None or not v.size for v in (start, limit, delta)):
            return None
        s, e, d = (float(v.ravel()[0]) for v in (start, limit, delta))
        n = (e - s) / d if d else math.nan
        return max(0, math.ceil(n)) if math.isfinite(n) else (None if math.isnan(n) else 2**63)
    shape = shape_of(node.input[0]) if node.input else None
    if shape is None:
        return None
    if op == "Expand" and _const(node, 1, consts) is not None:
        want = _const(node, 1, consts).ravel().tolist()
        rank = max(len(shape), len(want))
        a = [1] * (rank - len(shape)) + list(shape)
        b = [1] * (rank - len(want)) + want
        return _count([max(p, q) for p, q in zip(a, b)])
    if op == "Tile" and _const(node, 1, consts) is not None:
        return _count([d * r for d, r in zip(shape, _const(node, 1, consts).ravel().tolist())])
    if op == "Pad" and _const(node, 1, consts) is not None:
        pads = _const(node, 1, consts).ravel().tolist()
        if len(pads) == 2 * len(shape):
            return _count([d + pads[i] + pads[i + len(shape)] for i, d in enumerate(shape)])
    if op in ("Resize", "Upsample"):
        for k in (3, 2, 1):
            v = _const(node, k, consts)
            if v is not None and v.size == len(shape):
                if v.dtype.kind == "f":
                    return _count([math.floor(d * s) for d, s in zip(shape, v.ravel().tolist())])
                return _count(v.ravel().tolist())
    return None


def check_fold(node: onnx.NodeProto, consts: Mapping[str, np.ndarray], shape_of: Shapes) -> None:
    """Refuse evaluating `node` at build time when its output would be absurdly large (or a
    constant Loop would run for ever). Shapes shape inference knew were checked already."""
    if node.op_type == "Loop":
        trips = _const(node, 0, consts)
        if trips is None or not trips.size or int(trips.ravel()[0]) > MAX_FOLD_LOOP:
            raise ModelError(f"{where(node)}: a constant Loop without a trip count of at most "
                             f"{MAX_FOLD_LOOP} cannot be evaluated at build time")
    if any(shape_of(o) is not None for o in node.output[:1] if o):
        return
    count = _estimate(node, consts, shape_of)
    if count is not None and count * _itemsize(node, consts) > MAX_TENSOR_BYTES:
        raise ModelError(f"{where(node)}: its output would have {count} elements; at most "
                         f"{MAX_TENSOR_BYTES} bytes per tensor are supported")


def _itemsize(node: onnx.NodeProto, consts: Mapping[str, np.ndarray]) -> int:
    """Bytes per element of the output of the ops _estimate knows (their input 0's type,
    ConstantOfShape: its `value`, float32 by default)."""
    if node.op_type == "ConstantOfShape":
        for a in node.attribute:
            if a.name == "value" and a.HasField("t"):
                try:
                    return np.dtype(helper.tensor_dtype_to_np_dtype(a.t.data_type)).itemsize
                except (KeyError, ValueError, TypeError):
                    return 4
        return 4
    x = _const(node, 0, consts)
    return x.dtype.itemsize if x is not None else 1


def too_costly_to_fold(node: onnx.NodeProto, consts: Mapping[str, np.ndarray]) -> bool:
    """A constant Conv/ConvTranspose/MatMul/Gemm whose evaluation would take minutes (a model
    can ask for terabytes of multiply-adds within the size limits)."""
    a, b = _const(node, 0, consts), _const(node, 1, consts)
    if a is None or b is None or node.op_type not in ("Conv", "ConvTranspose", "MatMul", "Gemm"):
        return False
    if node.op_type in ("MatMul", "Gemm"):
        batch = math.prod(a.shape[:-2]) if a.ndim > 2 else 1
        rows = a.shape[-2] if a.ndim > 1 else 1
        macs = batch * rows * (a.shape[-1] if a.ndim else 1) * (b.shape[-1] if b.ndim > 1 else 1)
    else:  # N*H*W*Cin * Cout/group*kh*kw (/ Cin): every weight at every pixel, unstrided
        macs = math.prod(a.shape) * math.prod(b.shape) // max(1, a.shape[1] if a.ndim > 1 else 1)
    return macs > MAX_FOLD_MACS


# Ops whose constant weights the kernels transform (packing, Winograd, BN folding, int8/fp16
# compression, sparsity). A NaN or Inf weight is a broken model: onnxruntime and edgec sum in
# other orders, so which outputs turn NaN/Inf would differ silently. Refused instead.
_WEIGHTED = {"Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (1, 2), "MatMul": (1,),
             "GRU": (1, 2, 3), "LSTM": (1, 2, 3, 7), "RNN": (1, 2, 3),
             "BatchNormalization": (1, 2, 3, 4), "InstanceNormalization": (1, 2),
             "LayerNormalization": (1, 2)}


def check_finite_weights(nodes: list[onnx.NodeProto], consts: Mapping[str, np.ndarray]) -> None:
    for node in nodes:
        for k in _WEIGHTED.get(node.op_type, ()):
            w = _const(node, k, consts)
            if w is not None and w.dtype.kind == "f" and not np.isfinite(w).all():
                raise ModelError(f"{where(node)}: weight {show(node.input[k])} contains NaN or Inf; "
                                 "the model is broken (where NaN would appear depends on the order "
                                 "of summation, so no engine's result is meaningful)")

"""Write a QDQ model in onnxruntime `quantize_static`'s format: QuantizeLinear/DequantizeLinear
pairs on activations (per tensor, asymmetric u8 or s8), DequantizeLinear on constant weights
(int8 symmetric [-127, 127], or [-64, 64] by default on x86 without VNNI, per output channel
by default) and int32 biases (scale s_in*s_w).
A Relu/Clip right after Conv/Gemm/MatMul/Add is fused: only its output is quantized; Add/Mul by
a constant scalar is not a quantization point (it joins the elementwise table around it).
First (fold.py, prepare.py): opsets < 13 are upgraded, Constant nodes become initializers,
constant subgraphs are evaluated, and BatchNormalization and per-channel affine ops after a Conv
are folded into its weights."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgec.errors import EdgecError, ModelError
from edgec.quantize.calibrate import collect_ranges, float_tensors
from edgec.quantize.data import load_calibration
from edgec.quantize.fold import fold_affine, fold_constants, prune_initializers
from edgec.quantize.prepare import constants_to_initializers, upgrade_opset

QUANT_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
             "MatMulInteger", "QLinearAdd", "DynamicQuantizeLinear", "QLinearMul",
             "QLinearGlobalAveragePool", "QLinearConcat"}
WEIGHTED = ("Conv", "Gemm", "MatMul")
FUSABLE = WEIGHTED + ("Add",)
ACTIVATION_OPS = {"Conv": [0], "Gemm": [0], "MatMul": [0, 1], "Add": [0, 1], "Mul": [0, 1],
                  "Concat": None, "GlobalAveragePool": [0], "AveragePool": [0], "MaxPool": [0],
                  "Reshape": [0], "Flatten": [0]}
UNARY_ELEMENTWISE = {"Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "LeakyRelu", "Elu", "Neg",
                     "Abs", "Exp", "Erf", "Softplus", "Softsign", "Selu", "Gelu"}
SAME_SCALE = ("MaxPool", "Reshape", "Flatten")  # output keeps the input's scale and zero point


@dataclass(frozen=True)
class QuantOptions:
    method: str = "minmax"
    per_channel: bool = True
    activations: str = "u8"  # u8 | s8
    percentile: float = 99.99
    # weight range: 8 -> [-127, 127]; 7 -> [-64, 64], which x86 AVX2 without VNNI multiplies
    # exactly with vpmaddubsw (edgec/kernels/int8/quads.py); 0 -> default_weight_bits()
    weight_bits: int = 0

    # nodes left in float (no Q/DQ on their inputs/output, float weights): node names, output
    # tensor names, or "first" / "last" (the first / last Conv, Gemm or MatMul with a weight)
    keep_fp32: tuple[str, ...] = ()
    bias_correction: bool = False  # empirical bias correction of Conv/Gemm (bias_correct.py)
    # accuracy guard (guard.py): keep the most sensitive layers float until the output cosine
    # vs the float model on the calibration data reaches this; 0 turns it off
    min_cosine: float = 0.99


def default_weight_bits(profile: object | None = None) -> int:
    """8: full-range weights, accuracy first. 7-bit weights ([-64, 64]) make the exact
    vpmaddubsw kernels usable on x86 without VNNI (faster int8), but cost accuracy: the real
    PP-OCR classifier drops from 0.9905 to 0.9785 output cosine without bias correction. So they
    are opt-in (`--weight-bits 7`); `profile` is kept for a future per-target choice."""
    del profile
    return 8


def check_float_model(model: onnx.ModelProto) -> None:
    q = sorted({n.op_type for n in model.graph.node if n.op_type in QUANT_OPS})
    if q:
        raise ModelError(f"the model is already quantized (it has {', '.join(q)} nodes); "
                         "quantize the float model instead")


def activation_params(lo: float, hi: float, kind: str) -> tuple[np.float32, np.ndarray]:
    """Asymmetric per-tensor scale and zero point (onnxruntime's rule: the range includes 0)."""
    qmin, qmax, dt = (0, 255, np.uint8) if kind == "u8" else (-128, 127, np.int8)
    rmin, rmax = min(lo, 0.0), max(hi, 0.0)
    scale = np.float32((rmax - rmin) / (qmax - qmin)) if rmax > rmin else np.float32(1.0)
    zp = np.clip(np.rint(qmin - rmin / float(scale)), qmin, qmax).astype(dt)
    return scale, np.array(zp, dt)


def weight_params(w: np.ndarray, axis: int | None, bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """int8 symmetric [-127, 127] (7 bits: [-64, 64]): (scale float32, quantized int8); per
    channel along `axis`."""
    if bits not in (7, 8):
        raise EdgecError(f"weight bits {bits}: expected 7 or 8")
    qmax = 127.0 if bits == 8 else 64.0
    if axis is None:
        amax = np.array(np.abs(w).max() if w.size else 0.0)
    else:
        amax = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(axis=1)
    # a channel whose largest weight is below float32's normal range times qmax (PP-OCRv5 det has
    # one at 1e-37) would get a denormal scale, which QuantizeLinear consumers refuse: it is zero
    scale = np.where(amax / qmax >= np.finfo(np.float32).tiny, amax / qmax, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    if axis is not None:
        shape[axis] = -1
    q = np.clip(np.rint(w / scale.reshape(shape)), -qmax, qmax).astype(np.int8)
    return scale, q


class _Writer:
    def __init__(self, model: onnx.ModelProto, opts: QuantOptions, keep: frozenset[int] = frozenset()):
        self.m, self.opts, self.keep = model, opts, keep
        self.g = model.graph
        self.inits = {i.name: numpy_helper.to_array(i) for i in self.g.initializer}
        self.new_inits: list[onnx.TensorProto] = []
        self.new_nodes: dict[str, list[onnx.NodeProto]] = {}  # tensor -> Q/DQ after its producer
        self.params: dict[str, tuple[str, str]] = {}  # tensor -> (scale name, zp name)
        self.values: dict[str, tuple[np.float32, np.ndarray]] = {}
        self.dq: dict[str, str] = {}  # tensor -> its DequantizeLinear output

    def add_init(self, name: str, arr: np.ndarray) -> str:
        self.new_inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def kept_nodes(self) -> set[int]:
        """Indices (in graph order) of the nodes that QuantOptions.keep_fp32 names."""
        weighted = [k for k, n in enumerate(self.g.node) if n.op_type in WEIGHTED
                    and len(n.input) > 1 and n.input[1] in self.inits]
        names = set(self.opts.keep_fp32)
        out = set(self.keep) | {k for k, n in enumerate(self.g.node)
               if n.name in names or (n.output and n.output[0] in names)}
        known = {n.name for n in self.g.node} | {o for n in self.g.node for o in n.output}
        unknown = sorted(names - known - {"first", "last"})
        if unknown:
            raise EdgecError(f"--keep-fp32: no node or tensor named {', '.join(unknown)}")
        if weighted and "first" in names:
            out.add(weighted[0])
        if weighted and "last" in names:
            out.add(weighted[-1])
        return out

    def in_region(self, n: onnx.NodeProto, prod: dict[str, onnx.NodeProto]) -> bool:
        """Add/Mul inside an elementwise region of one source tensor: a constant scalar operand
        (an affine step), or both operands computed from the same tensor by such steps (HardSwish
        exported as x * Clip(x + 3, 0, 6) / 6, Swish as x * Sigmoid(x)). No quantization point:
        the compiler turns the whole region into one 256-entry table (fold-qdq's QLut) between
        the Q/DQ of the ops that need integers."""
        if n.op_type not in ("Add", "Mul") or len(n.input) != 2:
            return False
        if any(i in self.inits and self.inits[i].size == 1 for i in n.input):
            return True
        a, b = (self.region_root(i, prod) for i in n.input)
        return a is not None and a == b

    def region_root(self, t: str, prod: dict[str, onnx.NodeProto]) -> str | None:
        """The tensor `t` is computed from by unary elementwise ops and scalar-constant
        Add/Sub/Mul/Div steps (itself when there are none)."""
        for _ in range(8):
            n = prod.get(t)
            if n is None:
                return t
            ins = [i for i in n.input if i and not (i in self.inits and self.inits[i].size == 1)]
            if len(ins) != 1 or not (n.op_type in UNARY_ELEMENTWISE or n.op_type in ("Add", "Sub", "Mul", "Div")):
                return t
            t = ins[0]
        return t

    def plan(self) -> tuple[list[str], dict[str, str]]:
        """Tensors to quantize (graph order) and same-scale tensors -> their source tensor."""
        consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in self.g.node:
            for i in n.input:
                consumers.setdefault(i, []).append(n)
        outputs = {o.name for o in self.g.output}
        want, same = [], {}

        def add(t: str) -> None:
            if t and t not in self.inits and t not in want:
                want.append(t)

        keep = self.kept_nodes()
        prod = {o: n for n in self.g.node for o in n.output}
        for j, n in enumerate(self.g.node):
            if n.op_type not in ACTIVATION_OPS or j in keep or self.in_region(n, prod):
                continue
            idx = ACTIVATION_OPS[n.op_type]
            for k in range(len(n.input)) if idx is None else idx:
                if k < len(n.input):
                    add(n.input[k])
            out = n.output[0]
            cons = consumers.get(out, [])
            if (n.op_type in FUSABLE and len(cons) == 1 and cons[0].op_type in ("Relu", "Clip")
                    and out not in outputs):
                out = cons[0].output[0]
            if n.op_type in SAME_SCALE:
                same[out] = n.input[0]
            add(out)
        return want, same

    def quantize_tensor(self, t: str, scale: np.float32, zp: np.ndarray) -> None:
        s = self.add_init(f"{t}_scale", np.array(scale, np.float32))
        z = self.add_init(f"{t}_zero_point", zp)
        self.values[t] = (scale, zp)
        q, dq = f"{t}_QuantizeLinear_Output", f"{t}_DequantizeLinear_Output"
        self.new_nodes[t] = [helper.make_node("QuantizeLinear", [t, s, z], [q], f"{t}_QuantizeLinear"),
                             helper.make_node("DequantizeLinear", [q, s, z], [dq], f"{t}_DequantizeLinear")]
        self.dq[t] = dq

    def quantize_weight(self, k: int, n: onnx.NodeProto) -> None:
        wname = n.input[1]
        if wname not in self.inits or n.input[0] not in self.values:
            return
        w = self.inits[wname].astype(np.float32)
        if n.op_type == "Conv":
            axis = 0
        elif w.ndim != 2:
            axis = None
        else:
            trans = any(a.name == "transB" and a.i for a in n.attribute)
            axis = 0 if n.op_type == "Gemm" and trans else 1
        axis = axis if self.opts.per_channel else None
        ws, wq = weight_params(w, axis, self.opts.weight_bits or default_weight_bits())
        base = f"{n.name or wname}_{wname}"
        ax = {"axis": axis} if axis is not None else {}
        wdq = f"{base}_DequantizeLinear_Output"
        zp = np.zeros(ws.shape, np.int8)
        nodes = [helper.make_node("DequantizeLinear", [self.add_init(f"{base}_quantized", wq),
                                                      self.add_init(f"{base}_scale", ws),
                                                      self.add_init(f"{base}_zero_point", zp)],
                                  [wdq], f"{base}_DequantizeLinear", **ax)]
        n.input[1] = wdq
        bias_ok = n.op_type in ("Conv", "Gemm") and len(n.input) > 2 and n.input[2] in self.inits
        if bias_ok and self.inits[n.input[2]].ndim == 1 and self.inits[n.input[2]].size == w.shape[axis or 0]:
            b = self.inits[n.input[2]].astype(np.float64)
            bs = (np.float32(self.values[n.input[0]][0]) * ws).astype(np.float32)
            bq = np.clip(np.rint(b / bs.astype(np.float64)), -(2**31), 2**31 - 1).astype(np.int32)
            bdq = f"{base}_bias_DequantizeLinear_Output"
            bax = {"axis": 0} if bs.ndim else {}
            nodes.append(helper.make_node(
                "DequantizeLinear", [self.add_init(f"{base}_bias_quantized", bq),
                                     self.add_init(f"{base}_bias_scale", bs),
                                     self.add_init(f"{base}_bias_zero_point", np.zeros(bs.shape, np.int32))],
                [bdq], f"{base}_bias_DequantizeLinear", **bax))
            n.input[2] = bdq
        self.weight_nodes[k] = nodes

    def run(self, ranges: dict[str, tuple[float, float]], want: list[str], same: dict[str, str]) -> None:
        for t in want:
            src = same.get(t)
            while src in same and src not in self.values:
                src = same[src]
            if src is not None and src in self.values:
                self.quantize_tensor(t, *self.values[src])
            else:
                self.quantize_tensor(t, *activation_params(*ranges[t], self.opts.activations))
        self.weight_nodes: dict[int, list[onnx.NodeProto]] = {}  # node index -> DQ nodes
        keep = self.kept_nodes()
        for k, n in enumerate(self.g.node):
            if n.op_type in WEIGHTED and len(n.input) > 1 and k not in keep:
                self.quantize_weight(k, n)
        self.rewrite()

    def rewrite(self) -> None:
        g = self.g
        outputs = {o.name for o in g.output}
        renamed = {t: f"{t}_fp32" for t in self.dq if t in outputs}  # graph outputs stay named
        for t, new in renamed.items():
            q, dq = self.new_nodes[t]
            q.input[0] = new
            dq.output[0] = t
            self.dq[t] = t
        original = {new: t for t, new in renamed.items()}
        nodes = []
        for t in (i.name for i in g.input):
            nodes += self.new_nodes.get(t, [])
        for k, n in enumerate(g.node):
            nodes += self.weight_nodes.get(k, [])
            for k, i in enumerate(n.input):
                if i in self.dq:
                    n.input[k] = self.dq[i]
            for k, o in enumerate(n.output):
                if o in renamed:
                    n.output[k] = renamed[o]
            nodes.append(n)
            for o in n.output:
                nodes += self.new_nodes.get(original.get(o, o), [])
        del g.node[:]
        g.node.extend(nodes)
        g.initializer.extend(self.new_inits)
        prune_initializers(self.m)


def quantize_model(model: onnx.ModelProto, feeds: list[dict[str, np.ndarray]],
                   opts: QuantOptions | None = None) -> onnx.ModelProto:
    """Float model + calibration feeds -> QDQ model (see the module docstring)."""
    opts = opts or QuantOptions()
    if opts.activations not in ("u8", "s8"):
        raise EdgecError(f"--activations {opts.activations!r}: expected u8 or s8")
    check_float_model(model)
    if not feeds:
        raise EdgecError("calibration data is empty (no samples)")
    m = fold_affine(fold_constants(constants_to_initializers(upgrade_opset(model))))
    want, _ = _Writer(m, opts).plan()
    floats = set(float_tensors(m)) | {i.name for i in m.graph.input}
    ranges = collect_ranges(m, [t for t in want if t in floats], feeds, opts.method, opts.percentile)

    def write(keep: frozenset[int]) -> onnx.ModelProto:
        """The QDQ model with the weighted nodes `keep` (graph indices) left float."""
        q = onnx.ModelProto()
        q.CopyFrom(m)
        w = _Writer(q, opts, keep)
        want, same = w.plan()
        w.run(ranges, [t for t in want if t in floats], same)
        if opts.bias_correction:
            from edgec.quantize.bias_correct import correct_biases

            correct_biases(m, q, feeds)
        return q

    if opts.min_cosine > 0:
        from edgec.quantize.guard import hold_accuracy

        weighted = [k for k, n in enumerate(m.graph.node) if n.op_type in WEIGHTED and len(n.input) > 1
                    and n.input[1] in {i.name for i in m.graph.initializer}]
        m = hold_accuracy(m, write, weighted, feeds, opts.min_cosine)
    else:
        m = write(frozenset())
    m.producer_name, m.producer_version = "edgec.quantize", "1"
    try:
        onnx.checker.check_model(m)
    except onnx.checker.ValidationError as exc:
        raise ModelError(f"the quantized model is invalid: {str(exc).splitlines()[0]}") from None
    return m


def quantize_file(model: str | os.PathLike, calibration: str | os.PathLike, output: str | os.PathLike,
                  opts: QuantOptions | None = None, limit: int | None = None) -> onnx.ModelProto:
    from edgec.importer import load_onnx

    proto = load_onnx(model)
    q = quantize_model(proto, load_calibration(calibration, proto, limit), opts)
    onnx.save(q, os.fspath(output))
    return q

"""A TFLite graph (reader.py) as an ONNX model, which the ONNX importer then takes as usual
(docs/tflite.md). The model keeps its NHWC inputs and outputs; inside, every 4-D tensor can be
had in either layout and is converted only where an op needs the other one:

- `Builder.get(t, "nchw")` returns an NCHW version of tensor t, emitting a Transpose once (or
  transposing the data at build time for a constant);
- convs, pools, resizes and depth-to-space produce NCHW outputs; elementwise ops, pads,
  concatenations and means work in whichever layout their inputs already have (axes and
  broadcast constants are permuted to match);
- reshapes, fully connected layers, slices and the graph outputs ask for NHWC.

So a pure conv stack gets one Transpose at the input and one at each output, none between
layers. Ops are converted by the functions in ops.py; an unsupported op is collected, and all
of them are listed at once before anything else is done."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgec.errors import ModelError
from edgec.importer.tflite.reader import Op, Tensor, TflGraph

OPSET = 18  # Reduce* take their axes as an input
TO_NCHW, TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]
# NHWC axis -> NCHW axis
AXIS_TO_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}


class Builder:
    def __init__(self, graph: TflGraph):
        self.g = graph
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.forms: dict[int, dict[str, str]] = {}  # tensor -> {"nhwc"|"nchw": onnx name}
        self.qforms: dict[int, dict[str, str]] = {}  # a quantized tensor's integer forms
        self.consts: dict[int, np.ndarray] = {t.index: t.data for t in graph.tensors
                                              if t.data is not None and t.sparsity is None}
        self._n = 0

    # ---- names and constants --------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        self._n += 1
        return f"{hint}__{self._n}"

    def tensor(self, t: int) -> Tensor:
        return self.g.tensors[t]

    def const_value(self, t: int) -> np.ndarray | None:
        return self.consts.get(t)

    def add_const(self, data: np.ndarray, hint: str = "c") -> str:
        name = self.fresh(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(data), name))
        return name

    def node(self, op: str, inputs: list[str], n_out: int = 1, outputs: list[str] | None = None,
             **attrs: object) -> list[str]:
        outs = outputs or [self.fresh(op.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, **attrs))
        return outs

    # ---- layouts ----------------------------------------------------------------------------
    def rank(self, t: int) -> int:
        return len(self.tensor(t).shape)

    def has(self, t: int, layout: str) -> bool:
        return layout in self.forms.get(t, {})

    def preferred(self, t: int) -> str:
        """The layout t already exists in (NCHW when both)."""
        forms = self.forms.get(t, {})
        return "nchw" if "nchw" in forms or (not forms and self.rank(t) == 4 and t in self.consts) else "nhwc"

    # ---- int8: quantized tensors are carried as DequantizeLinear(QuantizeLinear(float)), the
    # QDQ form the ONNX importer folds into integer kernels (edgec/optimize/qdq.py) -------------
    def quantized(self, t: int) -> bool:
        tt = self.tensor(t)
        return tt.quant is not None and tt.dtype in (np.int8, np.uint8, np.int32)

    def _qparams(self, t: int, perm: list[int] | None) -> tuple[str, str, dict]:
        q = self.tensor(t).quant
        assert q is not None
        zp_type = self.tensor(t).dtype
        axis = {} if q.scale.size == 1 else {"axis": perm.index(q.axis) if perm else q.axis}
        return (self.add_const(q.scale.reshape(-1) if axis else q.scale.reshape(()), "scale"),
                self.add_const(q.zero_point.astype(zp_type).reshape(-1) if axis else
                               q.zero_point.astype(zp_type).reshape(()), "zp"), axis)

    def dequantized(self, name: str, t: int, perm: list[int] | None = None) -> str:
        scale, zp, axis = self._qparams(t, perm)
        return self.node("DequantizeLinear", [name, scale, zp], **axis)[0]

    def weight(self, t: int, perm: list[int] | None) -> str:
        """A constant operand (weights), transposed by `perm`: float data as is, int8 data as
        DequantizeLinear of the integers (per-channel axis moved with the transpose)."""
        data = self.consts.get(t)
        if data is None:
            raise ModelError(f"the weights {self.tensor(t).name!r} must be constant")
        data = data.transpose(perm) if perm else data
        if self.quantized(t):
            return self.dequantized(self.add_const(data, f"q{t}"), t, perm)
        return self.add_const(np.asarray(data, np.float32) if data.dtype == np.float16 else data, f"w{t}")

    def get(self, t: int, layout: str = "nhwc") -> str:
        """The ONNX name of tensor t in `layout` ("nhwc" means as TFLite has it); a quantized
        tensor is given as its dequantized float value."""
        if self.rank(t) != 4:
            layout = "nhwc"
        forms = self.forms.setdefault(t, {})
        if layout in forms:
            return forms[layout]
        if t in self.consts:
            forms[layout] = self.weight(t, TO_NCHW if layout == "nchw" else None)
            return forms[layout]
        if not forms:
            raise ModelError(f"tensor {self.tensor(t).name!r} is read before any op writes it")
        perm = TO_NCHW if layout == "nchw" else TO_NHWC
        qforms = self.qforms.get(t)
        if qforms:  # transpose the integers, then dequantize: DQ stays next to its consumer (QDQ)
            q = self.node("Transpose", [next(iter(qforms.values()))], perm=perm)[0]
            qforms[layout] = q
            forms[layout] = self.dequantized(q, t, TO_NCHW if layout == "nchw" else None)
            return forms[layout]
        forms[layout] = self.node("Transpose", [next(iter(forms.values()))], perm=perm)[0]
        return forms[layout]

    def set(self, t: int, name: str, layout: str = "nhwc") -> None:
        """Tensor t is `name` (a float value); a quantized t is quantized to its parameters here."""
        layout = "nhwc" if self.rank(t) != 4 else layout
        if self.quantized(t):
            perm = TO_NCHW if layout == "nchw" else None
            scale, zp, axis = self._qparams(t, perm)
            q = self.node("QuantizeLinear", [name, scale, zp], **axis)[0]
            name = self.node("DequantizeLinear", [q, scale, zp], **axis)[0]
            self.qforms[t] = {layout: q}
        self.forms[t] = {layout: name}


Convert = Callable[[Builder, Op], None]


def to_onnx(graph: TflGraph, converters: dict[str, Convert]) -> onnx.ModelProto:
    missing = sorted({op.name for op in graph.ops if op.name not in converters})
    if missing:
        raise ModelError(f"unsupported TFLite op(s): {', '.join(missing)}")
    wide = sorted({t.name for t in graph.tensors if t.quant is not None and t.dtype == np.int16})
    if wide:
        raise ModelError(f"int16 quantized TFLite tensors are not supported: {', '.join(wide[:5])}")
    b = Builder(graph)
    inputs, outputs = [], []
    for i in graph.inputs:
        t = graph.tensors[i]
        name = graph.names[i]
        inputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(t.dtype), list(t.shape)))
        b.forms[i] = {"nhwc": b.dequantized(name, i) if b.quantized(i) else name}
        if b.quantized(i):
            b.qforms[i] = {"nhwc": name}
    for op in graph.ops:
        converters[op.name](b, op)
    taken = {v.name for v in inputs}
    for i in graph.outputs:
        t = graph.tensors[i]
        name = graph.names[i]
        if name in taken:
            raise ModelError(f"output name {name!r} is used twice in the TFLite model")
        taken.add(name)
        if b.quantized(i):  # integers out, as the model gives them
            b.get(i, "nhwc")
            b.node("Identity", [b.qforms[i]["nhwc"]], outputs=[name])
        else:
            b.node("Identity", [b.get(i, "nhwc")], outputs=[name])
        outputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(t.dtype), list(t.shape)))
    onnx_graph = helper.make_graph(b.nodes, "tflite", inputs, outputs, initializer=b.inits)
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8,
                              producer_name="edgec-tflite")
    return model

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
        self.consts: dict[int, np.ndarray] = {t.index: t.data for t in graph.tensors if t.data is not None}
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

    def get(self, t: int, layout: str = "nhwc") -> str:
        """The ONNX name of tensor t in `layout` ("nhwc" means as TFLite has it)."""
        if self.rank(t) != 4:
            layout = "nhwc"
        forms = self.forms.setdefault(t, {})
        if layout in forms:
            return forms[layout]
        if t in self.consts:
            data = self.consts[t]
            forms[layout] = self.add_const(data.transpose(TO_NCHW) if layout == "nchw" else data, f"w{t}")
            return forms[layout]
        if not forms:
            raise ModelError(f"tensor {self.tensor(t).name!r} is read before any op writes it")
        other = next(iter(forms.values()))
        perm = TO_NCHW if layout == "nchw" else TO_NHWC
        forms[layout] = self.node("Transpose", [other], perm=perm)[0]
        return forms[layout]

    def set(self, t: int, name: str, layout: str = "nhwc") -> None:
        self.forms[t] = {("nhwc" if self.rank(t) != 4 else layout): name}

    def out(self, op: Op, k: int = 0) -> int:
        return op.outputs[k]


Convert = Callable[[Builder, Op], None]


def to_onnx(graph: TflGraph, converters: dict[str, Convert]) -> onnx.ModelProto:
    missing = sorted({op.name for op in graph.ops if op.name not in converters})
    if missing:
        raise ModelError(f"unsupported TFLite op(s): {', '.join(missing)}")
    quantized = sorted({op.name for op in graph.ops if op.name not in ("DEQUANTIZE", "QUANTIZE")
                        for t in op.inputs if t >= 0 and graph.tensors[t].data is None
                        and graph.tensors[t].dtype in (np.int8, np.uint8, np.int16)})
    if quantized:
        raise ModelError("int8 TFLite models (quantized activations) are not supported yet; ops on integer "
                         f"tensors: {', '.join(quantized)}")
    b = Builder(graph)
    inputs, outputs = [], []
    for i in graph.inputs:
        t = graph.tensors[i]
        name = graph.names[i]
        inputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(t.dtype), list(t.shape)))
        b.forms[i] = {"nhwc": name}
    for op in graph.ops:
        converters[op.name](b, op)
    taken = {v.name for v in inputs}
    for i in graph.outputs:
        t = graph.tensors[i]
        name = graph.names[i]
        if name in taken:
            raise ModelError(f"output name {name!r} is used twice in the TFLite model")
        taken.add(name)
        b.node("Identity", [b.get(i, "nhwc")], outputs=[name])
        outputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(t.dtype), list(t.shape)))
    onnx_graph = helper.make_graph(b.nodes, "tflite", inputs, outputs, initializer=b.inits)
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8,
                              producer_name="edgec-tflite")
    return model

"""`--quantize fp16`: weights stored as float16, fp32 compute.

Target pass `store-weights-fp16`, run after the target passes (so convolution weights are
already packed in the order the kernels read them): every float32 constant of at least
MIN_ELEMENTS elements becomes a float16 constant plus a `Cast` to float32 placed right before
its first consumer. The weight blob holds half the bytes; the Cast runs on every inference
(one vectorized fp16->fp32 pass over the weights, F16C / NEON fcvtl) and its fp32 output lives
in the arena only while the consumer runs (the planner reuses the space). Converting once at
`model_init` into a persistent arena region would avoid that per-run cost but needs runtime
support; not done. Rounding to fp16 changes the results by about 2^-11 relative per weight."""

from __future__ import annotations

import numpy as np

from edgec.ir.graph import Graph, Node, Value

MIN_ELEMENTS = 256
# ops whose lowering reads a weight only through its buffer (not its values at build time)
FP16_CONSUMERS = {"Conv", "ConvDirect", "ConvOcvec", "MatMul", "Gemm", "Dense", "Gemv", "ConvWinograd", "WindowGemm",
                  "DepthwiseConv", "ConvTranspose", "Deconv"}


def store_weights_fp16(consumer_ops: set[str] | None = None):  # noqa: ANN201
    ops = consumer_ops

    def run(g: Graph) -> Graph:
        consumers: dict[str, list[int]] = {}
        for k, n in enumerate(g.nodes):
            for i in n.inputs:
                consumers.setdefault(i, []).append(k)
        casts: dict[int, list[Node]] = {}
        renames: dict[int, dict[str, str]] = {}
        outputs = set(g.outputs)
        for name in sorted(consumers):
            v = g.values.get(name)
            if (v is None or not v.is_const or np.dtype(v.dtype) != np.float32 or v.size < MIN_ELEMENTS
                    or name in outputs):
                continue
            users = consumers[name]
            if ops is not None and any(g.nodes[k].op not in ops for k in users):
                continue
            half = g.add_const(f"{name}_fp16", v.data.astype(np.float16))
            wide = g.fresh(f"{name}_fp32")
            g.values[wide] = Value(wide, np.dtype(np.float32), v.shape)
            first = min(users)
            casts.setdefault(first, []).append(Node("Cast", [half], [wide], {"to": "float32"},
                                                    f"{name}_to_fp32"))
            for k in users:
                renames.setdefault(k, {})[name] = wide
        nodes = []
        for k, n in enumerate(g.nodes):
            nodes += casts.get(k, [])
            if k in renames:
                n.inputs = [renames[k].get(i, i) for i in n.inputs]
            nodes.append(n)
        g.nodes = nodes
        return g

    return run

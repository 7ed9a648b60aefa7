"""Target pass `compute-fp16` (`--precision fp16`, targets with ARMv8.2 fp16 arithmetic).

The float32 tensors of the ops listed in HALF_OPS become float16, and so do their constant
operands (weights, biases): the kernels of those ops then load, multiply-add and store eight
halves per NEON register (`fmla v.8h`) where fp32 fits four, and every activation and weight
moves half the bytes. Everything else keeps fp32; a `Cast` sits on every edge between the two
(one per value and direction, at the first consumer), including the graph's inputs and outputs,
so a bundle's interface is unchanged.

It runs before the kernel families' packing passes, which see float16 tensors and pick vectors
of `TargetProfile.lanes(2)`. Accumulation is in fp16 as well (as XNNPACK's f16 kernels do): for
the reductions of ordinary convs (K up to a few thousand) the error stays near 2^-11 x sqrt(K)
relative, tested against fp32 on real-size models (tests/ops/test_fp16_compute.py). Ops with
long reductions or a wide dynamic range (MatMul/Gemm, Softmax, norms, reductions) stay fp32.
See docs/fp16.md."""

from __future__ import annotations

import numpy as np

from edgec.ir.graph import Graph, Node, Value

F32, F16 = np.dtype(np.float32), np.dtype(np.float16)
FP16_MAX = 65504.0

# op -> the input positions that carry the op's float data (the others, such as Resize's scales
# or Reshape's shape, keep their type; ALL: every input). Every output becomes float16.
ALL = None
HALF_OPS: dict[str, tuple[int, ...] | None] = {
    "Conv": (0, 1, 2),
    "ConvTranspose": (0, 1, 2),
    "Add": (0, 1), "Sub": (0, 1), "Mul": (0, 1),
    "Relu": (0,), "Sigmoid": (0,), "HardSwish": (0,), "HardSigmoid": (0,), "LeakyRelu": (0,),
    "Swish": (0,),  # x * sigmoid(x) (edgec/optimize/activation_patterns.py): |y| <= |x|
    "Concat": ALL,
    "Reshape": (0,), "Flatten": (0,), "Transpose": (0,),
    "Resize": (0,),
    "MaxPool": (0,), "AveragePool": (0,), "GlobalAveragePool": (0,),
}


SEEDS = {"Conv", "ConvTranspose"}  # the ops fp16 is for; the others follow them
GATES = {"Sigmoid", "HardSigmoid"}  # outputs in [0, 1]: a product with them cannot overflow
KEEP_FP32 = "keep_fp32"  # node attr set from calibration ranges (edgec/quantize/fp16_range.py)


def _takes(g: Graph, n: Node, half_values: set[str], producers: dict[str, Node]) -> bool:
    """Whether `n` computes in fp16: a HALF_OPS op whose data inputs and outputs are float32
    (a mixed node, such as a Concat of an int tensor, keeps its types), whose constant operands
    fit fp16's range, and that is not an integer product made exact in floats (`exact`) or
    marked by calibration. Convs start fp16 regions; the other ops join one only when one of
    their inputs is already fp16 (a transformer's chain of elementwise ops stays fp32 instead of
    casting back and forth). A product of two activations stays fp32 unless one is a gate: x * x
    overflows fp16 from |x| > 256 (the variance of a decomposed LayerNorm)."""
    if n.op not in HALF_OPS or n.op == "Resize" and n.attrs.get("mode", "nearest") != "nearest":  # linear: fp32
        return False
    if n.attrs.get("exact") or n.attrs.get(KEEP_FP32):
        return False
    ins = [i for k, i in enumerate(n.inputs) if i and _is_data(n.op, k)]
    vals = [g.values[i] for i in ins]
    if not vals or any(v.dtype != F32 for v in vals) or any(g.values[o].dtype != F32 for o in n.outputs if o):
        return False
    if not all(not v.is_const or np.all(np.abs(v.data) <= FP16_MAX) for v in vals):
        return False
    dynamic = [i for i in ins if not g.values[i].is_const]
    if n.op == "Mul" and len(dynamic) == 2 and not any(_is_gate(producers.get(i)) for i in dynamic):
        return False
    return n.op in SEEDS or any(i in half_values for i in dynamic)


def _is_gate(n: Node | None) -> bool:
    act = n.attrs.get("activation") if n is not None else None
    return n is not None and (n.op in GATES or bool(act) and act[0] in GATES)


def _is_data(op: str, k: int) -> bool:
    data = HALF_OPS[op]
    return data is ALL or k in data


def compute_fp16(g: Graph) -> Graph:
    producers = {o: n for n in g.nodes for o in n.outputs}
    half_values: set[str] = set()
    half = []
    for n in g.nodes:  # in graph order, so a node sees whether its inputs became fp16
        half.append(_takes(g, n, half_values, producers))
        if half[-1]:
            half_values.update(n.outputs)
        n.attrs.pop(KEEP_FP32, None)
    casts: dict[tuple[str, np.dtype], str] = {}  # (value, dtype) -> its converted twin
    nodes: list[Node] = []

    def converted(name: str, dtype: np.dtype) -> str:
        """`name` as `dtype`: a constant converted now, anything else by one Cast node."""
        key = (name, dtype)
        if key not in casts:
            v = g.values[name]
            if v.is_const:
                casts[key] = g.add_const(f"{name}_{dtype.name}", v.data.astype(dtype))
            else:
                out = g.fresh(f"{name}_{dtype.name}")
                g.values[out] = Value(out, dtype, v.shape)
                nodes.append(Node("Cast", [name], [out], {"to": dtype.name}, f"{out}_cast"))
                casts[key] = out
        return casts[key]

    outputs = set(g.outputs)
    made: set[str] = set()  # the values this pass made float16 (not a model's own fp16 tensors)
    for n, is_half in zip(g.nodes, half):
        if is_half:
            n.inputs = [converted(i, F16) if i and _is_data(n.op, k) and g.values[i].dtype == F32 else i
                        for k, i in enumerate(n.inputs)]
            back = []
            for k, o in enumerate(n.outputs):
                if not o:  # an optional output left out
                    continue
                if o in outputs:  # the interface keeps fp32: write a twin, Cast it back after
                    twin = g.fresh(f"{o}_fp16")
                    g.values[twin] = Value(twin, F16, g.values[o].shape)
                    back.append(Node("Cast", [twin], [o], {"to": "float32"}, f"{o}_cast"))
                    casts[(o, F16)] = twin
                    n.outputs[k] = o = twin
                else:
                    g.values[o] = Value(o, F16, g.values[o].shape)
                made.add(o)
                casts[(o, F16)] = o
            nodes += [n, *back]
        else:
            n.inputs = [converted(i, F32) if i in made else i for i in n.inputs]
            nodes.append(n)
    g.nodes = nodes
    return g

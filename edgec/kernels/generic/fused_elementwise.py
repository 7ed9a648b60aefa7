"""FusedElementwise: a chain of float elementwise ops (edgec/optimize/elementwise_fusion.py) in
one broadcasting loop; each step reuses the rule of the op's own kernel."""

from __future__ import annotations

from llvmlite import ir

from edgec.codegen.activations import FLOAT_UNARY
from edgec.codegen.kernel import KernelContext, lowering
from edgec.kernels.generic.elementwise import emit_elementwise, float_binary


@lowering("FusedElementwise")
def lower_fused_elementwise(kc: KernelContext) -> None:
    program = kc.attrs["program"]
    b = kc.b

    def run(loaded: list[ir.Value]) -> ir.Value:
        temps: list[ir.Value] = []
        for op, operands, attrs in program:
            args = [loaded[k] if kind == "in" else temps[k] for kind, k in operands]
            if len(args) == 2:
                temps.append(float_binary(op, b, args[0], args[1], attrs))
            else:
                temps.append(FLOAT_UNARY[op](b, args[0], attrs))
        return temps[-1]

    emit_elementwise(kc, list(kc.inputs), kc.outputs[0], run)

"""FusedElementwise: a chain of float elementwise ops (edgec/optimize/elementwise_fusion.py) in
one broadcasting loop, possibly starting from int8 inputs (DequantizeLinear steps) and ending in
an int8 output (a QuantizeLinear step); each step reuses the rule of the op's own kernel."""

from __future__ import annotations

from llvmlite import ir

from edgec.codegen.activations import FLOAT_UNARY
from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.types import F32, I32
from edgec.kernels.generic.elementwise import emit_elementwise, float_binary, half_native
from edgec.kernels.generic.quant import dequantize_value, quantize_value, to_i32


def _qdq(b: ir.IRBuilder, op: str, x: ir.Value, attrs: dict) -> ir.Value:
    """A per-tensor (De)QuantizeLinear step, with the rounding of the standalone kernels
    (edgec/kernels/generic/quant.py), so fusing does not change a bit."""
    scale, zp = ir.Constant(F32, attrs["scale"]), ir.Constant(I32, attrs["zero_point"])
    if op == "DequantizeLinear":
        return dequantize_value(b, to_i32(b, x, attrs["dtype"]), scale, zp)
    return quantize_value(b, x, scale, zp, attrs["dtype"])


@lowering("FusedElementwise")
def lower_fused_elementwise(kc: KernelContext) -> None:
    program = kc.attrs["program"]
    b = kc.b

    def run(loaded: list[ir.Value]) -> ir.Value:
        temps: list[ir.Value] = []
        for op, operands, attrs in program:
            args = [loaded[k] if kind == "in" else temps[k] for kind, k in operands]
            if op in ("QuantizeLinear", "DequantizeLinear"):
                temps.append(_qdq(b, op, args[0], attrs))
            elif len(args) == 2:
                temps.append(float_binary(op, b, args[0], args[1], attrs))
            else:
                temps.append(FLOAT_UNARY[op](b, args[0], attrs))
        return temps[-1]

    native = half_native(kc, [*kc.inputs, kc.outputs[0]], [op for op, _, _ in program])
    emit_elementwise(kc, list(kc.inputs), kc.outputs[0], run, widen=not native)

"""MatMul and Gemm -> IR `MatMul(A, B[, bias])` with `trans_a` / `trans_b`.

Gemm is normalized so the kernel only ever sees one op: alpha is folded into a constant operand
(else a Mul on the smaller operand), constant operands are transposed at build time (so the
kernel reads B as (K, N) rows), and C becomes the fused bias when it is a row vector over N,
else an Add after the MatMul.
"""

from __future__ import annotations

import numpy as np
import onnx

from edgec.errors import ModelError
from edgec.importer.context import ConvertContext
from edgec.importer.registry import converter
from edgec.importer.validate import where

# Integer MatMul uses wrapping integer arithmetic, like onnxruntime.
MATMUL_DTYPES = {"float32", "float64", "int32", "int64", "uint32", "uint64"}


def _check_dtype(cx: ConvertContext, node: onnx.NodeProto, name: str) -> np.dtype:
    dt = np.dtype(cx.value(name).dtype)
    if dt.name not in MATMUL_DTYPES:
        raise ModelError(f"{where(node)}: element type {dt.name} is not supported "
                         f"(supported: {', '.join(sorted(MATMUL_DTYPES))})")
    return dt


@converter("MatMul")
def convert_matmul(cx: ConvertContext, node: onnx.NodeProto) -> None:
    a, b = node.input[0], node.input[1]
    _check_dtype(cx, node, a)
    if not cx.shape(a) or not cx.shape(b):
        raise ModelError(f"{where(node)}: operands must have rank >= 1")
    cx.emit("MatMul", [a, b], [node.output[0]], node.name, trans_a=False, trans_b=False)


def _scaled(cx: ConvertContext, name: str, factor: float, dt: np.dtype, hint: str) -> str:
    """`name * factor`: a new constant when `name` is constant, else a Mul node."""
    data = cx.const(name)
    if data is not None:
        return cx.add_const(f"{hint}_scaled", (data * factor).astype(dt))
    k = cx.add_const(f"{hint}_factor", np.array(factor, dtype=dt))
    out = cx.temp(f"{hint}_scaled", dt, cx.shape(name))
    cx.emit("Mul", [name, k], [out], hint)
    return out


@converter("Gemm")
def convert_gemm(cx: ConvertContext, node: onnx.NodeProto) -> None:
    at = cx.attrs(node)
    alpha, beta = float(at.get("alpha", 1.0)), float(at.get("beta", 1.0))
    ta, tb = bool(at.get("transA", 0)), bool(at.get("transB", 0))
    a, b, c = node.input[0], node.input[1], cx.input(node, 2)
    y = node.output[0]
    dt = _check_dtype(cx, node, a)
    if len(cx.shape(a)) != 2 or len(cx.shape(b)) != 2:
        raise ModelError(f"{where(node)}: A and B must be 2-D, got {cx.shape(a)} and {cx.shape(b)}")
    m, n = cx.shape(y)
    hint = node.name or y

    # Constant operands are stored in the layout the kernel reads best (B as K x N rows).
    if ta and cx.const(a) is not None:
        a, ta = cx.add_const(f"{hint}_At", np.ascontiguousarray(cx.const(a).T)), False
    if tb and cx.const(b) is not None:
        b, tb = cx.add_const(f"{hint}_Bt", np.ascontiguousarray(cx.const(b).T)), False

    if alpha != 1.0:
        if cx.const(b) is not None or (cx.const(a) is None and cx.value(b).size <= cx.value(a).size):
            b = _scaled(cx, b, alpha, dt, f"{hint}_B")
        else:
            a = _scaled(cx, a, alpha, dt, f"{hint}_A")

    inputs = [a, b]
    add_c = ""
    if c and beta != 0.0:
        cshape = tuple(cx.shape(c))
        cdata = cx.const(c)
        row = len(cshape) <= 1 or (len(cshape) == 2 and cshape[0] == 1)  # does not vary along M
        if cdata is not None and row:
            bias = np.broadcast_to((cdata * beta).astype(dt).reshape(-1), (n,)).copy()
            inputs.append(cx.add_const(f"{hint}_bias", bias))
        elif cdata is None and cshape in ((n,), (1, n)):
            # A runtime row vector over N is the bias input as is (a Reshape alias drops the 1).
            bias = c
            if cshape != (n,):
                bias = cx.temp(f"{hint}_C", dt, (n,))
                cx.emit("Reshape", [c], [bias], node.name)
            inputs.append(bias if beta == 1.0 else _scaled(cx, bias, beta, dt, f"{hint}_C"))
        else:
            add_c = c if beta == 1.0 else _scaled(cx, c, beta, dt, f"{hint}_C")
    if not add_c:
        cx.emit("MatMul", inputs, [y], node.name, trans_a=ta, trans_b=tb)
        return
    prod = cx.temp(f"{hint}_AB", dt, (m, n))
    cx.emit("MatMul", inputs, [prod], node.name, trans_a=ta, trans_b=tb)
    cx.emit("Add", [prod, add_c], [y], node.name)

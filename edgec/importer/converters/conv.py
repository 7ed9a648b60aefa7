"""Conv, ConvTranspose and BatchNormalization -> IR.

Spatial attributes are normalized to 2-D: a 1-D op (rank-3 tensors N,C,W) gets H=1 attributes
(stride 1, no padding, dilation 1 along H) and its kernel views the tensors as (N,C,1,W).
auto_pad is resolved here, so kernels only see explicit `pads` = (top, left, bottom, right).

Where ONNX shape inference and onnxruntime disagree on an output size (ConvTranspose with
auto_pad SAME and output_padding, pooling windows that start in the end padding), the import
stops with a ModelError instead of compiling an output shape no runtime agrees with.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from edgec.errors import ModelError
from edgec.importer.context import ConvertContext
from edgec.importer.registry import converter
from edgec.importer.validate import show, where

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def spatial_rank(cx: ConvertContext, node: onnx.NodeProto) -> int:
    """1 or 2; 3-D (and odd ranks) are rejected with a clear message."""
    rank = len(cx.shape(node.input[0]))
    if rank == 5:
        raise ModelError(f"3-D {node.op_type} is not supported ({where(node)})")
    if rank not in (3, 4):
        raise ModelError(f"{where(node)}: input rank {rank} is not supported (expected 3 or 4)")
    return rank - 2


def check_dtype(cx: ConvertContext, node: onnx.NodeProto, allowed: tuple[str, ...]) -> None:
    dt = np.dtype(cx.value(node.input[0]).dtype).name
    if dt not in allowed:
        raise ModelError(f"{where(node)}: dtype {dt} is not supported ({', '.join(allowed)} only)")


def ints(attrs: dict[str, Any], key: str, default: list[int], n: int, node: onnx.NodeProto) -> list[int]:
    vals = [int(v) for v in attrs.get(key, default)]
    if len(vals) != n:
        raise ModelError(f"{where(node)}: attribute {key} has {len(vals)} values, expected {n}")
    return vals


def auto_pad(attrs: dict[str, Any], node: onnx.NodeProto) -> str:
    mode = attrs.get("auto_pad", "NOTSET") or "NOTSET"
    if mode not in AUTO_PADS:
        raise ModelError(f"{where(node)}: unknown auto_pad {show(mode)}")
    return mode


def same_pads(size: int, k_eff: int, stride: int, upper: bool) -> tuple[int, int]:
    """ONNX SAME padding: output = ceil(size / stride); the odd pixel goes to the end (UPPER)
    or the beginning (LOWER)."""
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + k_eff - size)
    head = total // 2 if upper else total - total // 2
    return head, total - head


def forward_pads(mode: str, attrs: dict[str, Any], sizes: list[int], k_eff: list[int],
                 strides: list[int], node: onnx.NodeProto) -> list[int]:
    """Pads in ONNX layout (begins..., ends...) for Conv and the pools."""
    n = len(sizes)
    if mode == "VALID":
        return [0] * (2 * n)
    if mode == "NOTSET":
        pads = ints(attrs, "pads", [0] * (2 * n), 2 * n, node)
        if min(pads) < 0:
            raise ModelError(f"{where(node)}: negative pads {pads} are not supported")
        return pads
    pairs = [same_pads(s, k, st, mode == "SAME_UPPER") for s, k, st in zip(sizes, k_eff, strides)]
    return [p[0] for p in pairs] + [p[1] for p in pairs]


def to_2d(vals: list[int], fill: int) -> list[int]:
    """(w,) -> [fill, w] for 1-D ops; 2-D values pass through."""
    return [fill, *vals] if len(vals) == 1 else list(vals)


def pads_2d(pads: list[int]) -> list[int]:
    """ONNX (begins..., ends...) -> IR (top, left, bottom, right)."""
    return [0, pads[0], 0, pads[1]] if len(pads) == 2 else list(pads)


def check_out_shape(cx: ConvertContext, node: onnx.NodeProto, want: list[int], why: str = "") -> None:
    """The output value's spatial dims (from ONNX shape inference) must be what the kernel
    computes; they differ only where ONNX inference and onnxruntime disagree."""
    got = list(cx.shape(node.output[0])[2:])
    if got != want:
        raise ModelError(f"{where(node)}: ONNX shape inference gives spatial output {got} but "
                         f"onnxruntime computes {want}{why}; this combination is ambiguous and "
                         "not supported")


def _bias_input(node: onnx.NodeProto) -> list[str]:
    return [node.input[2]] if len(node.input) > 2 and node.input[2] else []


def check_bias(cx: ConvertContext, node: onnx.NodeProto, index: int, channels: int) -> None:
    """An optional bias must hold one value per output channel: kernels index it by channel,
    so a shorter one would read past its end."""
    name = cx.input(node, index)
    if name and tuple(cx.shape(name)) != (channels,):
        raise ModelError(f"{where(node)}: bias {show(name)} has shape {list(cx.shape(name))}; "
                         f"expected [{channels}] (one value per output channel)")


def check_weight_rank(node: onnx.NodeProto, xs: tuple[int, ...], ws: tuple[int, ...]) -> None:
    if len(ws) != len(xs):
        raise ModelError(f"{where(node)}: weights of shape {list(ws)} for an input of rank "
                         f"{len(xs)}; expected rank {len(xs)} weights")


def check_kernel_shape(node: onnx.NodeProto, a: dict[str, Any], kernel: list[int]) -> None:
    """kernel_shape is redundant with the weights; where they disagree, ONNX shape inference
    follows the attribute and the kernel the weights."""
    if "kernel_shape" in a and [int(k) for k in a["kernel_shape"]] != kernel:
        raise ModelError(f"{where(node)}: kernel_shape {list(a['kernel_shape'])} does not match "
                         f"the weights' spatial shape {kernel}")


def conv_attrs(cx: ConvertContext, node: onnx.NodeProto, x: str, w: str) -> dict:
    """Conv-like attributes (QLinearConv, ConvInteger too) checked and normalised to 2-D:
    strides, pads, dilations, group, kernel."""
    nsp = spatial_rank(cx, node)
    a = cx.attrs(node)
    xs, ws = cx.shape(x), cx.shape(w)
    check_weight_rank(node, xs, ws)
    group = int(a.get("group", 1))
    if group < 1 or xs[1] % group or ws[0] % group or ws[1] * group != xs[1]:
        raise ModelError(f"{where(node)}: group={group} does not match input channels {xs[1]} "
                         f"and weights {list(ws)}")
    kernel = list(ws[2:])
    check_kernel_shape(node, a, kernel)
    strides = ints(a, "strides", [1] * nsp, nsp, node)
    dils = ints(a, "dilations", [1] * nsp, nsp, node)
    if min(strides) < 1 or min(dils) < 1:
        raise ModelError(f"{where(node)}: strides and dilations must be positive")
    k_eff = [(k - 1) * d + 1 for k, d in zip(kernel, dils)]
    pads = forward_pads(auto_pad(a, node), a, list(xs[2:]), k_eff, strides, node)
    out = [(s + pads[i] + pads[i + nsp] - k) // st + 1
           for i, (s, k, st) in enumerate(zip(xs[2:], k_eff, strides))]
    if min(out) < 1:
        raise ModelError(f"{where(node)}: the kernel {kernel} (dilated {k_eff}) is larger than the "
                         f"padded input {list(xs[2:])}; expected an output of at least 1 pixel")
    check_out_shape(cx, node, out)
    return {"strides": to_2d(strides, 1), "pads": pads_2d(pads), "dilations": to_2d(dils, 1),
            "group": group, "kernel": to_2d(kernel, 1)}


@converter("Conv")
def convert_conv(cx: ConvertContext, node: onnx.NodeProto) -> None:
    spatial_rank(cx, node)
    check_dtype(cx, node, ("float32",))
    attrs = conv_attrs(cx, node, node.input[0], node.input[1])
    check_bias(cx, node, 2, cx.shape(node.input[1])[0])
    del attrs["kernel"]
    cx.emit("Conv", [node.input[0], node.input[1], *_bias_input(node)], [node.output[0]], node.name, **attrs)


def transpose_pads(size: int, k_eff: int, stride: int, adj: int, mode: str,
                   out_size: int | None) -> tuple[int, int, int]:
    """(pad_begin, pad_end, output size) of one ConvTranspose axis without explicit pads, as
    onnxruntime computes them. It follows the ONNX spec for splitting the total padding, but
    clamps a negative total at 0: with SAME the output is then smaller than size*stride (ONNX
    shape inference agrees), and a larger output_shape gets extra end rows holding only the
    bias, which the IR expresses as a negative end pad (kernels only use the begin pads)."""
    natural = (size - 1) * stride + adj + k_eff
    if out_size is None:  # SAME_*: aim for size * stride
        total = max(0, natural - size * stride)
        head = total // 2 if mode == "SAME_UPPER" else total - total // 2
        return head, total - head, natural - total
    total = natural - out_size
    if total < 0:
        return 0, total, out_size
    head = total // 2 if mode == "SAME_UPPER" else total - total // 2
    return head, total - head, out_size


@converter("ConvTranspose")
def convert_conv_transpose(cx: ConvertContext, node: onnx.NodeProto) -> None:
    nsp = spatial_rank(cx, node)
    check_dtype(cx, node, ("float32",))
    a = cx.attrs(node)
    x, w = node.input[0], node.input[1]
    xs, ws = cx.shape(x), cx.shape(w)
    check_weight_rank(node, xs, ws)
    group = int(a.get("group", 1))
    if group < 1 or xs[1] % group or ws[0] != xs[1]:
        raise ModelError(f"{where(node)}: group={group} does not match input channels {xs[1]} "
                         f"and weights {list(ws)}")
    check_bias(cx, node, 2, ws[1] * group)
    kernel = list(ws[2:])
    check_kernel_shape(node, a, kernel)
    strides = ints(a, "strides", [1] * nsp, nsp, node)
    dils = ints(a, "dilations", [1] * nsp, nsp, node)
    adj = ints(a, "output_padding", [0] * nsp, nsp, node)
    if min(strides) < 1 or min(dils) < 1 or min(adj) < 0:
        raise ModelError(f"{where(node)}: strides/dilations must be positive, output_padding >= 0")
    k_eff = [(k - 1) * d + 1 for k, d in zip(kernel, dils)]
    mode = auto_pad(a, node)
    sizes = list(xs[2:])
    if "output_shape" in a:
        want = [int(v) for v in a["output_shape"]][-nsp:]
        axes = [transpose_pads(s, k, st, o, mode, size_out) for s, k, st, o, size_out in
                zip(sizes, k_eff, strides, adj, want)]
        for (_, end, _), st in zip(axes, strides):
            if end <= -st:  # onnxruntime rejects these (the input would have been larger)
                raise ModelError(f"{where(node)}: output_shape {want} is larger than the input "
                                 "size, strides and kernel allow")
    elif mode in ("SAME_UPPER", "SAME_LOWER"):
        axes = [transpose_pads(s, k, st, o, mode, None) for s, k, st, o in zip(sizes, k_eff, strides, adj)]
    else:
        pads = [0] * (2 * nsp) if mode == "VALID" else ints(a, "pads", [0] * (2 * nsp), 2 * nsp, node)
        axes = [(pads[i], pads[i + nsp], (s - 1) * st + o + k - pads[i] - pads[i + nsp])
                for i, (s, k, st, o) in enumerate(zip(sizes, k_eff, strides, adj))]
    check_out_shape(cx, node, [ax[2] for ax in axes])
    pads = [ax[0] for ax in axes] + [ax[1] for ax in axes]
    cx.emit("ConvTranspose", [x, w, *_bias_input(node)], [node.output[0]], node.name,
            strides=to_2d(strides, 1), pads=pads_2d(pads), dilations=to_2d(dils, 1), group=group,
            output_padding=to_2d(adj, 0))


def _bn_runtime_params(cx: ConvertContext, node: onnx.NodeProto, stats: list[str], eps: float,
                       dtype: np.dtype, shape: tuple[int, ...]) -> tuple[str, str]:
    """BN statistics that are graph inputs: compute a and b with small elementwise nodes."""
    y = node.output[0]
    if any(cx.value(n).dtype != dtype for n in stats):
        raise ModelError(f"{where(node)}: runtime statistics must have the input's dtype")
    scale, bias, mean, var = stats
    vec = cx.shape(scale)

    def step(op: str, ins: list[str], hint: str, out_shape: tuple[int, ...] = vec) -> str:
        out = cx.temp(f"{y}_bn_{hint}", dtype, out_shape)
        cx.emit(op, ins, [out], node.name)
        return out

    eps_c = cx.add_const(f"{y}_bn_eps", np.array(eps, dtype))
    mul = step("Div", [scale, step("Sqrt", [step("Add", [var, eps_c], "var_eps")], "std")], "a")
    add = step("Sub", [bias, step("Mul", [mean, mul], "mean_a")], "b")
    return step("Reshape", [mul], "scale", shape), step("Reshape", [add], "shift", shape)


@converter("BatchNormalization")
def convert_batchnorm(cx: ConvertContext, node: onnx.NodeProto) -> None:
    """Inference BN is y = x * a + b with per-channel a = scale / sqrt(var + eps) and
    b = B - mean * a, emitted as Mul + Add so `fold_scale_into_conv` can fold it into a Conv.
    a and b are computed at build time when the statistics are constants (the usual case)."""
    a = cx.attrs(node)
    if int(a.get("training_mode", 0)):
        raise ModelError(f"{where(node)}: training_mode=1 (batch statistics) is not supported; "
                         "export the model in inference mode")
    for extra in node.output[1:]:
        if extra and extra in cx.graph.outputs:
            raise ModelError(f"{where(node)}: training output {show(extra)} (running statistics) "
                             "is not supported")
    x, y = node.input[0], node.output[0]
    xv = cx.value(x)
    if not np.issubdtype(xv.dtype, np.floating) or xv.dtype == np.float16:
        raise ModelError(f"{where(node)}: dtype {np.dtype(xv.dtype).name} is not supported "
                         "(float32, float64 only)")
    if len(xv.shape) < 2:
        raise ModelError(f"{where(node)}: input must have a channel axis (rank >= 2)")
    stats = [cx.input(node, k) for k in range(1, 5)]
    size = int(np.prod(cx.shape(stats[0])))
    chans, rank = xv.shape[1], len(xv.shape)
    if int(a.get("spatial", 1)) == 0 and size != chans:
        # opset 7-8 spatial=0: one set of statistics per (C, D1, ...) element.
        if tuple(cx.shape(stats[0])) != tuple(xv.shape[1:]):
            raise ModelError(f"{where(node)}: spatial=0 statistics of shape {list(cx.shape(stats[0]))} "
                             f"do not match the input's {list(xv.shape[1:])}")
        shape: tuple[int, ...] = tuple(xv.shape[1:])
    else:
        if size != chans:
            raise ModelError(f"{where(node)}: statistics have {size} values for {chans} channels")
        shape = (chans,) + (1,) * (rank - 2)
    eps = float(a.get("epsilon", 1e-5))
    consts = [cx.const(n) for n in stats]
    if any(c is None for c in consts):
        mul_c, add_c = _bn_runtime_params(cx, node, stats, eps, xv.dtype, shape)
    else:
        scale, bias, mean, var = (np.asarray(c, np.float64) for c in consts)
        mul = scale / np.sqrt(var + eps)
        add = bias - mean * mul
        mul_c = cx.add_const(f"{y}_bn_scale", mul.reshape(shape).astype(xv.dtype))
        add_c = cx.add_const(f"{y}_bn_shift", add.reshape(shape).astype(xv.dtype))
    scaled = cx.temp(f"{y}_bn_scaled", xv.dtype, xv.shape)
    cx.emit("Mul", [x, mul_c], [scaled], node.name)
    cx.emit("Add", [scaled, add_c], [y], node.name)

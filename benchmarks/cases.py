"""Benchmark cases: seeded ONNX models (per-op micro cases and whole networks) and FLOP counts.

FLOPs are counted from the graph after ONNX shape inference as 2 * multiply-accumulates of the
Conv, ConvTranspose, MatMul and Gemm nodes only: the usual convention for "GFLOP/s" of vision
models. Bias adds, activations, pools, resizes and elementwise ops are not counted (they are a
few percent of the work in these nets, and are memory-bound anyway).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import prod

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    make: Callable[[], onnx.ModelProto]
    kind: str  # "micro" (one op) or "model" (a whole network)
    quick: bool = False  # part of the default set of `--quick`
    dense_baseline: bool = False  # also time edgec's dense build (`sparsity="off"`) of the model
    float_model: Callable[[], onnx.ModelProto] | None = None  # int8 cases: also time edgec's fp32 build
    # max abs error / max(1, |onnxruntime|) accepted; int8 models differ by quantization steps
    tolerance: float = 1e-3
    build_kw: tuple[tuple[str, object], ...] = ()  # extra edgec.build keywords, e.g. weights="int8"


def make_inputs(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded N(0, 1) data for every graph input (all cases take float32 inputs)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for vi in model.graph.input:
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        feeds[vi.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


# -- FLOP counting --------------------------------------------------------------------------

def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    g = inferred.graph
    shapes = {t.name: list(t.dims) for t in g.initializer}
    for vi in [*g.input, *g.value_info, *g.output]:
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value for d in dims]
    return shapes


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(helper.get_attribute_value(a))
    return default


def _macs(node: onnx.NodeProto, shapes: dict[str, list[int]]) -> int:
    op = node.op_type
    if op == "Conv":
        w, y = shapes[node.input[1]], shapes[node.output[0]]
        # every output element is a dot product over (Cin/group) * kernel elements
        return prod(y) * prod(w[1:])
    if op == "ConvTranspose":
        x, w = shapes[node.input[0]], shapes[node.input[1]]
        # every input element is scattered to (Cout/group) * kernel outputs
        return prod(x) * prod(w[1:])
    if op == "MatMul":
        a, y = shapes[node.input[0]], shapes[node.output[0]]
        return prod(y) * a[-1]
    if op == "Gemm":
        a, y = shapes[node.input[0]], shapes[node.output[0]]
        k = a[0] if _attr(node, "transA", 0) else a[1]
        return prod(y) * k
    return 0


def count_flops(model: onnx.ModelProto) -> int:
    """2 * MACs of the Conv/ConvTranspose/MatMul/Gemm nodes, one inference."""
    shapes = _shapes(model)
    return 2 * sum(_macs(n, shapes) for n in model.graph.node)


# -- micro cases ----------------------------------------------------------------------------

def _finish(nodes: list[onnx.NodeProto], name: str, inp: tuple[str, list[int]],
            out: str, inits: dict[str, np.ndarray]) -> onnx.ModelProto:
    g = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info(inp[0], TensorProto.FLOAT, inp[1])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="benchmarks")
    m.ir_version = IR_VERSION
    m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    onnx.checker.check_model(m)
    return m


def _he(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def dense(n: int, seed: int = 0) -> onnx.ModelProto:
    """GEMV as a fully connected layer exports: MatMul [1, n] x [n, n] + bias (Add)."""
    rng = np.random.default_rng(seed)
    inits = {"w": _he(rng, (n, n), n), "b": rng.uniform(-0.1, 0.1, n).astype(np.float32)}
    nodes = [helper.make_node("MatMul", ["input", "w"], ["mm"]),
             helper.make_node("Add", ["mm", "b"], ["output"])]
    return _finish(nodes, f"dense{n}", ("input", [1, n]), "output", inits)


def sparse_dense(n: int, density: float, unstructured: bool, seed: int = 0) -> onnx.ModelProto:
    """`dense(n)` with zeros in W: `density` of the 1x8 blocks (1 input x 8 outputs) kept, or of
    the single elements when `unstructured`. Stored dense, as a pruned model is exported."""
    m = dense(n, seed)
    w = onnx.numpy_helper.to_array(m.graph.initializer[0])
    rng = np.random.default_rng(seed + 1)
    if unstructured:
        keep = rng.random(w.shape) < density
    else:
        keep = np.repeat(rng.random((n, -(-n // 8))) < density, 8, axis=1)[:, :n]
    m.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.where(keep, w, 0).astype(np.float32), "w"))
    return m


def conv(channels: int, size: int, out_channels: int, k: int, depthwise: bool = False,
         seed: int = 0) -> onnx.ModelProto:
    """One Conv (stride 1, 'same' padding) with bias on a 1 x C x size x size input."""
    rng = np.random.default_rng(seed)
    group = channels if depthwise else 1
    cig = channels // group
    inits = {"w": _he(rng, (out_channels, cig, k, k), cig * k * k),
             "b": rng.uniform(-0.1, 0.1, out_channels).astype(np.float32)}
    p = k // 2
    node = helper.make_node("Conv", ["input", "w", "b"], ["output"], kernel_shape=[k, k],
                            pads=[p] * 4, strides=[1, 1], group=group)
    return _finish([node], f"conv{k}x{k}", ("input", [1, channels, size, size]), "output", inits)


def wide_gemm(m: int, k: int, n: int, seed: int = 0) -> onnx.ModelProto:
    """Gemm [m, k] x [n, k]^T + bias: a CTC / vocabulary projection of m time steps."""
    rng = np.random.default_rng(seed)
    inits = {"w": _he(rng, (n, k), k), "b": rng.uniform(-0.1, 0.1, n).astype(np.float32)}
    node = helper.make_node("Gemm", ["input", "w", "b"], ["output"], transB=1)
    return _finish([node], "wide_gemm", ("input", [m, k]), "output", inits)


def wide_matmul(m: int, k: int, n: int, seed: int = 0) -> onnx.ModelProto:
    """MatMul [1, m, k] x [k, n]: an OCR recognizer's character head."""
    rng = np.random.default_rng(seed)
    node = helper.make_node("MatMul", ["input", "w"], ["output"])
    return _finish([node], "wide_matmul", ("input", [1, m, k]), "output", {"w": _he(rng, (k, n), k)})


def stft_conv(samples: int, bins: int = 257, k: int = 512, stride: int = 160, seed: int = 0) -> onnx.ModelProto:
    """Conv1d 1 -> bins, kernel k, stride: an STFT written as a convolution."""
    rng = np.random.default_rng(seed)
    node = helper.make_node("Conv", ["input", "w"], ["output"], kernel_shape=[k], strides=[stride])
    return _finish([node], "stft_conv", ("input", [1, 1, samples]), "output", {"w": _he(rng, (bins, 1, k), k)})


# -- whole networks -------------------------------------------------------------------------
# Imported lazily: generating a network takes about a second, listing cases should not.

def _mobilenet_v2() -> onnx.ModelProto:
    from edgec.models.mobilenet_v2 import mobilenet_v2

    return mobilenet_v2(224)


def _resnet18() -> onnx.ModelProto:
    from edgec.models.resnet import resnet18

    return resnet18(224)


def _squeezenet() -> onnx.ModelProto:
    from edgec.models.squeezenet import squeezenet

    return squeezenet(224)


def _shufflenet() -> onnx.ModelProto:
    from edgec.models.shufflenet import shufflenet

    return shufflenet(224, groups=3)


def _ppocr_det() -> onnx.ModelProto:
    from edgec.models.ppocr_det import ppocr_det

    return ppocr_det(640)


def _rapidocr(kind: str) -> onnx.ModelProto:
    """A real model of `pip install --no-deps rapidocr_onnxruntime==1.4.4`, input fixed."""
    from edgec.models import rapidocr

    return rapidocr.with_static_shapes(rapidocr.load(kind))  # static shapes for count_flops


def _qdq(make: Callable[[], onnx.ModelProto]) -> onnx.ModelProto:
    """onnxruntime's quantize_static QDQ model (u8 activations, per-channel int8 weights, 7-bit
    so that onnxruntime's AVX2 kernels are exact and outputs comparable), calibrated on 2 batches."""
    from edgec.models.ort_quant import calibration_inputs, quantize_qdq

    return quantize_qdq(make(), "uint8", reduce_range=True, calibration=calibration_inputs((1, 3, 224, 224), 2))


def _sampling_net(sparsity: float) -> onnx.ModelProto:
    from edgec.models.sampling_net import sampling_net

    return sampling_net(sparsity=sparsity, stateful=True)


CASES: list[Case] = [
    Case("dense256", "MatMul [1,256]x[256,256] + bias (GEMV)", lambda: dense(256), "micro", True),
    Case("dense1024", "MatMul [1,1024]x[1024,1024] + bias (GEMV)", lambda: dense(1024), "micro", True),
    Case("sparse256_1x8", "dense256 with 80% zeros in 1x8 blocks (vs edgec dense build too)",
         lambda: sparse_dense(256, 0.2, False), "micro", dense_baseline=True),
    Case("sparse256_unstr", "dense256 with 90% unstructured zeros (vs edgec dense build too)",
         lambda: sparse_dense(256, 0.1, True), "micro", dense_baseline=True),
    Case("conv1x1", "Conv 1x1, 1x64x56x56 -> 64, bias", lambda: conv(64, 56, 64, 1), "micro", True),
    Case("conv3x3", "Conv 3x3 pad 1, 1x64x56x56 -> 64, bias", lambda: conv(64, 56, 64, 3), "micro", True),
    Case("dwconv3x3", "depthwise Conv 3x3 pad 1, 1x144x56x56, bias",
         lambda: conv(144, 56, 144, 3, depthwise=True), "micro", True),
    Case("gemm20x8210", "Gemm [20,1024]x[8210,1024]^T + bias (a vocabulary projection)",
         lambda: wide_gemm(20, 1024, 8210), "micro"),
    Case("matmul40x18385", "MatMul [1,40,120]x[120,18385] (an OCR character head)",
         lambda: wide_matmul(40, 120, 18385), "micro"),
    Case("stft_conv", "Conv1d 1 -> 257, kernel 512, stride 160 over 16000 samples (an STFT)",
         lambda: stft_conv(16000), "micro"),
    Case("mobilenet_v2", "MobileNetV2 1.0, 224x224", _mobilenet_v2, "model"),
    Case("resnet18", "ResNet-18, 224x224", _resnet18, "model"),
    Case("mobilenet_v2_int8", "MobileNetV2 1.0, 224x224, int8 QDQ (onnxruntime quantize_static u8s8)",
         lambda: _qdq(_mobilenet_v2), "model", tolerance=0.25, float_model=_mobilenet_v2),
    Case("resnet18_int8", "ResNet-18, 224x224, int8 QDQ (onnxruntime quantize_static u8s8)",
         lambda: _qdq(_resnet18), "model", tolerance=0.25, float_model=_resnet18),
    Case("squeezenet", "SqueezeNet-like (v1.1 fire modules), 224x224", _squeezenet, "model"),
    Case("shufflenet", "ShuffleNet v1 g=3 1x, 224x224", _shufflenet, "model"),
    Case("ppocr_det", "PP-OCR-like DB text detector (MobileNetV3 0.5 + DBFPN 96), 640x640",
         _ppocr_det, "model"),
    Case("ppocr_det_real", "real PP-OCRv4 det (rapidocr_onnxruntime 1.4.4), 640x640",
         lambda: _rapidocr("det"), "model"),
    Case("ppocr_cls_real", "real PP-OCR mobile v2.0 text-direction cls (rapidocr), 48x192",
         lambda: _rapidocr("cls"), "model"),
    Case("sampling_net", "LPCNet-like sampling net step: GRU 384 -> GRU 16 -> dense 256 x2, softmax",
         lambda: _sampling_net(0.0), "model"),
    Case("sampling_net_sparse", "the same with the GRU 384 recurrent weights 80% zero in 1x8 blocks",
         lambda: _sampling_net(0.8), "model"),
    # int8 weights (per output row): outputs are softmax probabilities and GRU states in [-1, 1];
    # measured max abs diff vs fp32 ~1e-4 (softmax), ~1.2e-2 (h1_out), see tests/ops/test_weight_quant.py
    Case("sampling_net_int8", "sampling_net with int8 weights (--weights int8), fp32 activations",
         lambda: _sampling_net(0.0), "model", tolerance=0.05, build_kw=(("weights", "int8"),)),
    Case("sampling_net_sparse_int8", "sampling_net_sparse with int8 weights (BSR int8 values)",
         lambda: _sampling_net(0.8), "model", tolerance=0.05, build_kw=(("weights", "int8"),)),
    Case("sampling_net_fp16", "sampling_net with fp16 weights (--weights fp16)",
         lambda: _sampling_net(0.0), "model", tolerance=5e-3, build_kw=(("weights", "fp16"),)),
]

BY_NAME = {c.name: c for c in CASES}


def select(names: str | None, quick: bool = False) -> list[Case]:
    """Cases named in a comma-separated list (in the order given), else all (or the quick set)."""
    if not names:
        return [c for c in CASES if c.quick] if quick else list(CASES)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in BY_NAME]
    if unknown:
        raise KeyError(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    return [BY_NAME[n] for n in wanted]

"""A tiny layer-by-layer ONNX graph builder with seeded random weights.

The generators in this package use it to write realistic networks (MobileNetV2, ResNet, U-Net)
without pretrained weights. Conv/Gemm weights are He-initialised. BatchNormalization layers get
*calibrated* statistics, as in a trained net: while the graph is built, the builder runs a small
float64 numpy forward pass on a seeded random calibration batch, and each BN's running mean and
variance are the measured per-channel statistics of its input, perturbed a little. Without this,
random BN statistics leave per-channel offsets that swamp the input-dependent signal after a
dozen layers (outputs nearly constant); with it, activations stay O(1) at every depth and the
BN parameters (mean != 0, var != 1, random scale and bias) make BN folding a real test.

Everything is deterministic for a given seed: the same call produces byte-identical protobufs
(no versions or timestamps are written). The calibration runs in float64 at a fixed small
resolution, so the weights do not depend on the requested input resolution, and BLAS rounding
differences between machines (~1e-16 relative) are far below float32 resolution, so the stored
statistics are the same everywhere (tests/models checks the bundled example byte for byte).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # fixed, so the bytes do not change with the installed onnx version


# -- float64 reference layers for the calibration pass (NCHW) -------------------------------

def _conv(x: np.ndarray, w: np.ndarray, stride: int, pad: int, groups: int) -> np.ndarray:
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, c, h, wd = x.shape
    co, cig, k, _ = w.shape
    oh, ow = (h - k) // stride + 1, (wd - k) // stride + 1
    # im2col: (N, groups, C/groups * k * k, OH * OW), matching w's (cig, kh, kw) order.
    cols = np.stack([x[:, :, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
                     for i in range(k) for j in range(k)], axis=2)
    cols = cols.reshape(n, groups, cig * k * k, oh * ow)
    y = np.matmul(w.reshape(groups, co // groups, cig * k * k), cols)
    return y.reshape(n, co, oh, ow)


def _maxpool(x: np.ndarray, k: int, stride: int, pad: int) -> np.ndarray:
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    oh, ow = (x.shape[2] - k) // stride + 1, (x.shape[3] - k) // stride + 1
    wins = [x[:, :, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
            for i in range(k) for j in range(k)]
    return np.max(wins, axis=0)


def _linear_2x_matrix(n: int) -> np.ndarray:
    """(2n, n) interpolation matrix of 'half_pixel' linear upsampling by 2 (edges clamped)."""
    src = np.clip((np.arange(2 * n) + 0.5) / 2 - 0.5, 0, n - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    m = np.zeros((2 * n, n))
    np.add.at(m, (np.arange(2 * n), lo), 1 - (src - lo))
    np.add.at(m, (np.arange(2 * n), hi), src - lo)
    return m


def _upsample2x(x: np.ndarray, mode: str) -> np.ndarray:
    if mode == "nearest":
        return x.repeat(2, axis=2).repeat(2, axis=3)
    mh, mw = _linear_2x_matrix(x.shape[2]), _linear_2x_matrix(x.shape[3])
    return np.einsum("ph,nchw,qw->ncpq", mh, x, mw)


class GraphBuilder:
    """Append nodes one layer at a time; each method returns the name of its output value.

    Channel counts are passed explicitly; ONNX shape inference fills in every shape when the
    model is finished. `calib_shape` is the (N, C, H, W) of the calibration batch (N(0,1) data).
    """

    def __init__(self, name: str, seed: int, input_name: str, calib_shape: tuple[int, int, int, int]):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._counts: dict[str, int] = {}
        # Separate stream, so the weights do not depend on the calibration batch size.
        calib = np.random.default_rng([seed, 1]).standard_normal(calib_shape)
        self.act: dict[str, np.ndarray] = {input_name: calib}  # calibration activations

    # -- naming and constants -------------------------------------------------------------
    def fresh(self, prefix: str) -> str:
        k = self._counts.get(prefix, 0)
        self._counts[prefix] = k + 1
        return f"{prefix}_{k}"

    def const(self, prefix: str, array: np.ndarray) -> str:
        name = self.fresh(prefix)
        # np.array, not np.ascontiguousarray: the latter turns 0-d scalars (Clip bounds) into 1-d.
        self.initializers.append(numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    def node(self, op: str, inputs: list[str], value: np.ndarray, prefix: str | None = None,
             output: str | None = None, **attrs: object) -> str:
        """Append one node whose calibration output is `value`."""
        name = self.fresh(prefix or op.lower())
        out = output or name
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        self.act[out] = value
        return out

    def _uniform(self, shape: tuple[int, ...], low: float, high: float) -> np.ndarray:
        return self.rng.uniform(low, high, size=shape).astype(np.float32)

    def _he(self, shape: tuple[int, ...], fan_in: int, gain: float = 1.0) -> np.ndarray:
        # He (Kaiming) normal init: var = 2 / fan_in keeps the variance of ReLU nets ~constant.
        std = gain * np.sqrt(2.0 / fan_in)
        return (self.rng.standard_normal(shape) * std).astype(np.float32)

    # -- layers ---------------------------------------------------------------------------
    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1, pad: int | None = None,
             groups: int = 1, bias: bool = False, gain: float = 1.0, output: str | None = None) -> str:
        """Square-kernel Conv with symmetric padding (default: 'same' for odd k)."""
        pad = k // 2 if pad is None else pad
        w = self._he((cout, cin // groups, k, k), (cin // groups) * k * k, gain)
        y = _conv(self.act[x], w.astype(np.float64), stride, pad, groups)
        ins = [x, self.const("conv_w", w)]
        if bias:
            b = self._uniform((cout,), -0.1, 0.1)
            ins.append(self.const("conv_b", b))
            y = y + b.reshape(1, -1, 1, 1)
        return self.node("Conv", ins, y, "conv", output, kernel_shape=[k, k], strides=[stride, stride],
                         pads=[pad] * 4, group=groups, dilations=[1, 1])

    def batchnorm(self, x: str, c: int, gamma: tuple[float, float] = (0.5, 1.5)) -> str:
        """BatchNormalization (inference form) with calibrated, perturbed running statistics.

        `gamma` is the range of the scale; residual branches use a small one (the usual
        "zero-gamma" trick, softened) so the residual sum does not grow with depth.
        """
        a = self.act[x]
        mean_, std_ = a.mean(axis=(0, 2, 3)), a.std(axis=(0, 2, 3)) + 1e-3
        scale = self._uniform((c,), *gamma)
        bias = self._uniform((c,), -0.2, 0.2)
        # Running stats of a trained net track the data but never match a given batch exactly.
        mean = (mean_ + 0.1 * std_ * self.rng.standard_normal(c)).astype(np.float32)
        var = (std_**2 * self.rng.uniform(0.8, 1.25, c)).astype(np.float32)
        ins = [x] + [self.const(p, v) for p, v in
                     [("bn_scale", scale), ("bn_bias", bias), ("bn_mean", mean), ("bn_var", var)]]
        eps = 1e-5
        bshape = (1, -1, 1, 1)
        y = ((a - mean.reshape(bshape)) / np.sqrt(var.astype(np.float64).reshape(bshape) + eps)
             * scale.reshape(bshape) + bias.reshape(bshape))
        return self.node("BatchNormalization", ins, y, "bn", epsilon=eps, momentum=0.9)

    def relu(self, x: str) -> str:
        return self.node("Relu", [x], np.maximum(self.act[x], 0))

    def relu6(self, x: str) -> str:
        lo = self.const("clip_min", np.array(0.0, np.float32))
        hi = self.const("clip_max", np.array(6.0, np.float32))
        return self.node("Clip", [x, lo, hi], np.clip(self.act[x], 0, 6), "relu6")

    def sigmoid(self, x: str, output: str | None = None) -> str:
        return self.node("Sigmoid", [x], 1 / (1 + np.exp(-self.act[x])), output=output)

    def add(self, a: str, b: str) -> str:
        return self.node("Add", [a, b], self.act[a] + self.act[b])

    def concat(self, xs: list[str], axis: int = 1) -> str:
        return self.node("Concat", xs, np.concatenate([self.act[x] for x in xs], axis), axis=axis)

    def maxpool(self, x: str, k: int, stride: int, pad: int = 0) -> str:
        return self.node("MaxPool", [x], _maxpool(self.act[x], k, stride, pad), kernel_shape=[k, k],
                         strides=[stride, stride], pads=[pad] * 4)

    def global_avg_pool(self, x: str) -> str:
        return self.node("GlobalAveragePool", [x], self.act[x].mean(axis=(2, 3), keepdims=True), "gap")

    def flatten(self, x: str) -> str:
        a = self.act[x]
        return self.node("Flatten", [x], a.reshape(a.shape[0], -1), axis=1)

    def gemm(self, x: str, cin: int, cout: int, output: str | None = None) -> str:
        """Fully connected layer as PyTorch exports it: Gemm with transB=1, weight (cout, cin)."""
        w = self._he((cout, cin), cin, gain=np.sqrt(0.5))
        b = self._uniform((cout,), -0.1, 0.1)
        y = self.act[x] @ w.T.astype(np.float64) + b
        return self.node("Gemm", [x, self.const("fc_w", w), self.const("fc_b", b)], y, "fc", output,
                         alpha=1.0, beta=1.0, transB=1)

    def upsample2x(self, x: str, mode: str) -> str:
        """Resize by 2 in H and W the way PyTorch exports nn.Upsample.

        nearest: coordinate_transformation_mode='asymmetric', nearest_mode='floor';
        linear (bilinear, align_corners=False): 'half_pixel'.
        """
        if mode == "nearest":
            attrs = {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
        elif mode == "linear":
            attrs = {"coordinate_transformation_mode": "half_pixel"}
        else:
            raise ValueError(f"upsample mode must be 'nearest' or 'linear', not {mode!r}")
        scales = self.const("resize_scales", np.array([1, 1, 2, 2], np.float32))
        return self.node("Resize", [x, "", scales], _upsample2x(self.act[x], mode), "resize",
                         mode=mode, **attrs)

    # -- finishing --------------------------------------------------------------------------
    def finish(self, input_name: str, input_shape: list[int], output: str) -> onnx.ModelProto:
        """Wrap the nodes into a checked opset-17 model; ONNX shape inference fills every shape."""
        graph = helper.make_graph(
            self.nodes, self.name,
            [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, input_shape)],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
            self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="edgec.models")
        model.ir_version = IR_VERSION
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        # Shape inference fills the output's shape and records every intermediate in value_info;
        # drop the latter so the file stays a plain "weights + nodes" model.
        del model.graph.value_info[:]
        onnx.checker.check_model(model, full_check=True)
        self.act.clear()
        return model

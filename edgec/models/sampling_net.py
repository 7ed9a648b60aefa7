"""An LPCNet/WaveRNN-like sampling network: one autoregressive audio sample per run.

    input [1, 1, 128] -> GRU 384 -> GRU 16 -> tanh(Dense 16 -> 256) -> Dense 256 -> 256 -> softmax

Both GRUs use linear_before_reset = 1 (what Keras `reset_after=True` / PyTorch export, and
what LPCNet's sample-rate network uses). Weights are seeded (Glorot-like scale); the big GRU's
recurrent weights can be magnitude-pruned to `sparsity` zeros in 1 x `block` blocks (one input
element x `block` consecutive outputs, LPCNet/WaveRNN style). With `stateful`, the GRU states
are graph inputs (`h1`, `h2`, [1, 1, H]) and outputs (`h1_out`, `h2_out`) so a caller feeds
them back step by step.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8


def prune_blocks(w: np.ndarray, sparsity: float, block: int = 8) -> np.ndarray:
    """Zero the `sparsity` fraction of 1 x `block` blocks with the smallest L2 norm.
    w: [outputs, inputs] (ONNX R of one direction); a block is `block` consecutive output rows
    of one input column. Ties are broken by position (deterministic)."""
    rows, cols = w.shape
    if rows % block:
        raise ValueError(f"prune_blocks: {rows} output rows are not a multiple of block {block}")
    norms = np.sqrt((w.reshape(rows // block, block, cols) ** 2).sum(axis=1))  # [rows/block, cols]
    drop = int(round(sparsity * norms.size))
    keep = np.ones(norms.size, bool)
    keep[np.argsort(norms, axis=None, kind="stable")[:drop]] = False
    mask = np.repeat(keep.reshape(norms.shape), block, axis=0)
    return (w * mask).astype(np.float32)


def _glorot(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)


def sampling_net(seed: int = 0, sparsity: float = 0.0, block: int = 8, stateful: bool = False,
                 hidden: int = 384, hidden2: int = 16, inputs: int = 128,
                 levels: int = 256) -> onnx.ModelProto:
    """LPCNet-like sampling net (GRU 384 -> GRU 16 -> dual dense -> softmax), one step."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    rng = np.random.default_rng(seed)
    r1 = _glorot(rng, (1, 3 * hidden, hidden), hidden)
    if sparsity:
        r1[0] = prune_blocks(r1[0], sparsity, block)
    inits = {
        "W1": _glorot(rng, (1, 3 * hidden, inputs), inputs), "R1": r1,
        "B1": rng.uniform(-0.1, 0.1, (1, 6 * hidden)).astype(np.float32),
        "W2": _glorot(rng, (1, 3 * hidden2, hidden), hidden),
        "R2": _glorot(rng, (1, 3 * hidden2, hidden2), hidden2),
        "B2": rng.uniform(-0.1, 0.1, (1, 6 * hidden2)).astype(np.float32),
        "D1": _glorot(rng, (hidden2, levels), hidden2),
        "b1": rng.uniform(-0.1, 0.1, levels).astype(np.float32),
        "D2": _glorot(rng, (levels, levels), levels),
        "b2": rng.uniform(-0.1, 0.1, levels).astype(np.float32),
        "shape1": np.array([1, 1, hidden], np.int64), "shape2": np.array([1, hidden2], np.int64),
    }
    h1_in, h2_in = ("h1", "h2") if stateful else ("", "")
    nodes = [
        helper.make_node("GRU", ["input", "W1", "R1", "B1", "", h1_in], ["gru1_y", "h1_out"],
                         hidden_size=hidden, linear_before_reset=1, name="gru1"),
        helper.make_node("Reshape", ["gru1_y", "shape1"], ["gru1_seq"], name="squeeze1"),
        helper.make_node("GRU", ["gru1_seq", "W2", "R2", "B2", "", h2_in], ["gru2_y", "h2_out"],
                         hidden_size=hidden2, linear_before_reset=1, name="gru2"),
        helper.make_node("Reshape", ["gru2_y", "shape2"], ["gru2_flat"], name="squeeze2"),
        helper.make_node("Gemm", ["gru2_flat", "D1", "b1"], ["dense1"], name="dense1"),
        helper.make_node("Tanh", ["dense1"], ["dense1_act"], name="tanh1"),
        helper.make_node("Gemm", ["dense1_act", "D2", "b2"], ["logits"], name="dense2"),
        helper.make_node("Softmax", ["logits"], ["output"], axis=-1, name="softmax"),
    ]
    for n in nodes:  # trailing empty inputs are not allowed
        while n.input and n.input[-1] == "":
            n.input.pop()
    f = TensorProto.FLOAT
    ins = [helper.make_tensor_value_info("input", f, [1, 1, inputs])]
    outs = [helper.make_tensor_value_info("output", f, [1, levels])]
    if stateful:
        ins += [helper.make_tensor_value_info("h1", f, [1, 1, hidden]),
                helper.make_tensor_value_info("h2", f, [1, 1, hidden2])]
        outs += [helper.make_tensor_value_info("h1_out", f, [1, 1, hidden]),
                 helper.make_tensor_value_info("h2_out", f, [1, 1, hidden2])]
    g = helper.make_graph(nodes, "sampling_net", ins, outs,
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgec.models")
    m.ir_version = IR_VERSION
    onnx.checker.check_model(m)
    return m

"""GRU / LSTM / RNN fused kernels vs onnxruntime and onnx.reference (host, and under qemu for
aarch64 / armv7). Several RNN nodes share one model so one build covers many attribute
combinations; every node has its own outputs, each compared."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.reference
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.errors import ModelError
from edgec.importer import import_model
from edgec.pipeline import run_pipeline, target_passes
from edgec.targets import get_profile
from tests.helpers import assert_close, check_model, make_model, rand, run_edgec, run_onnxruntime

F = T.FLOAT
GATES = {"GRU": 3, "LSTM": 4, "RNN": 1}


class Net:
    """Collects RNN nodes reading one X [T, B, I] (or [B, T, I] for layout 1)."""

    def __init__(self, t: int, b: int, i: int, layout: int = 0):
        self.t, self.b, self.i, self.layout = t, b, i, layout
        self.nodes: list[onnx.NodeProto] = []
        self.inits: dict[str, np.ndarray] = {}
        self.outputs: list[tuple[str, int, None]] = []
        self.inputs: list[tuple[str, int, list[int]]] = [("X", F, [b, t, i] if layout else [t, b, i])]
        self.feeds: dict[str, np.ndarray] = {"X": rand(*self.inputs[0][2], seed=99)}

    def add(self, op: str, h: int, direction: str = "forward", bias: bool = True, init_h: bool = False,
            init_c: bool = False, peep: bool = False, outs: tuple[bool, ...] = (True, True, True),
            seq: np.ndarray | None = None, seq_runtime: bool = False, runtime_w: bool = False,
            **attrs: object) -> None:
        k = len(self.nodes)
        d = 2 if direction == "bidirectional" else 1
        g = GATES[op]
        seed = 10 * k
        names = {"W": rand(d, g * h, self.i, seed=seed + 1, low=-0.6, high=0.6),
                 "R": rand(d, g * h, h, seed=seed + 2, low=-0.6, high=0.6)}
        if bias or peep:
            names["B"] = rand(d, 2 * g * h, seed=seed + 3, low=-0.5, high=0.5)
        state = [self.b, d, h] if self.layout else [d, self.b, h]
        if seq is not None:
            names["seq"] = seq.astype(np.int32)
        if init_h:
            names["h0"] = rand(*state, seed=seed + 4, low=-0.9, high=0.9)
        if init_c:
            names["c0"] = rand(*state, seed=seed + 5)
        if peep:
            names["P"] = rand(d, 3 * h, seed=seed + 6, low=-0.5, high=0.5)
        order = ["W", "R", "B", "seq", "h0", "c0", "P"][:8 if op == "LSTM" else 5]
        inputs = ["X"] + [f"{n}{k}" if n in names else "" for n in order]
        while inputs[-1] == "":
            inputs.pop()
        for n, v in names.items():
            runtime = (n == "seq" and seq_runtime) or (runtime_w and n in ("W", "R", "B", "P"))
            if runtime:
                self.inputs.append((f"{n}{k}", T.INT32 if n == "seq" else F, list(v.shape)))
                self.feeds[f"{n}{k}"] = v
            else:
                self.inits[f"{n}{k}"] = v
        outputs = [f"{o}{k}" if want else "" for o, want in zip(["Y", "Y_h", "Y_c"], outs)]
        outputs = outputs[:3 if op == "LSTM" else 2]
        while outputs[-1] == "":
            outputs.pop()
        self.outputs += [(o, F, None) for o in outputs if o]
        self.nodes.append(helper.make_node(op, inputs, outputs, hidden_size=h, direction=direction,
                                           layout=self.layout, **attrs))

    def model(self) -> onnx.ModelProto:
        return make_model(self.nodes, self.inputs, self.outputs, self.inits)


@pytest.mark.parametrize("lbr", [0, 1])
def test_gru_directions_states_bias(lbr: int) -> None:
    net = Net(t=4, b=2, i=6)
    for k, direction in enumerate(["forward", "reverse", "bidirectional"]):
        net.add("GRU", 5 + 13 * k, direction, bias=k != 1, init_h=k != 0, linear_before_reset=lbr)
    net.add("GRU", 70, "forward", init_h=True, linear_before_reset=lbr)  # several register tiles
    check_model(net.model(), net.feeds)


@pytest.mark.parametrize("peep", [False, True])
def test_lstm_directions_states_peepholes(peep: bool) -> None:
    net = Net(t=3, b=3, i=5)
    for k, direction in enumerate(["forward", "reverse", "bidirectional"]):
        net.add("LSTM", 4 + 15 * k, direction, bias=k != 2, init_h=k != 0, init_c=k == 2, peep=peep)
    net.add("LSTM", 33, "bidirectional", init_h=True, init_c=True, peep=peep, input_forget=1)
    # onnx.reference ignores input_forget: the last node is checked against onnxruntime only.
    got = run_edgec(net.model(), net.feeds)
    for k, want in enumerate(run_onnxruntime(net.model(), net.feeds)):
        assert_close(got[k], want, what=f"output {k} vs onnxruntime")
    plain = Net(t=3, b=3, i=5)
    plain.nodes, plain.inits, plain.inputs, plain.feeds = net.nodes[:3], net.inits, net.inputs, net.feeds
    plain.outputs = net.outputs[:-3]
    ref = onnx.reference.ReferenceEvaluator(plain.model()).run(None, net.feeds)
    for k, want in enumerate(ref):
        assert_close(got[k], np.asarray(want), what=f"output {k} vs onnx.reference")


def test_simple_rnn_and_optional_outputs() -> None:
    """Empty output names (Y omitted, only Y_c, ...), an RNN node, seq_length 1."""
    net = Net(t=1, b=2, i=7)
    net.add("GRU", 6, outs=(False, True))
    net.add("GRU", 6, "bidirectional", outs=(True, False))
    # (onnx.reference stores empty output names as a value "": no "" input after them)
    net.add("LSTM", 5, "reverse", outs=(False, False, True), init_h=True, init_c=True)
    net.add("LSTM", 5, outs=(True, False, False))
    net.add("RNN", 9, "bidirectional", init_h=True)
    check_model(net.model(), net.feeds)


def test_layout_batch_first() -> None:
    """layout = 1 (onnxruntime rejects it): vs onnx.reference, and vs onnxruntime on the same
    weights in layout 0 with X and the states transposed."""
    net = Net(t=3, b=2, i=4, layout=1)
    net.add("GRU", 5, "bidirectional", init_h=True, linear_before_reset=1)
    net.add("LSTM", 6, "reverse", init_h=True, init_c=True, peep=True)
    got = run_edgec(net.model(), net.feeds)
    ref = onnx.reference.ReferenceEvaluator(net.model()).run(None, net.feeds)
    for k, want in enumerate(ref):
        assert_close(got[k], np.asarray(want), what=f"output {k} vs onnx.reference")
    m0 = net.model()
    for n in m0.graph.node:
        n.attribute.remove(next(a for a in n.attribute if a.name == "layout"))
    for init in m0.graph.initializer:
        if init.name[:2] in ("h0", "c0"):
            init.CopyFrom(onnx.numpy_helper.from_array(net.inits[init.name].transpose(1, 0, 2), init.name))
    m0.graph.input[0].CopyFrom(helper.make_tensor_value_info("X", F, [3, 2, 4]))
    del m0.graph.output[:]
    m0.graph.output.extend([helper.make_tensor_value_info(o, F, None) for o, _, _ in net.outputs])
    want0 = run_onnxruntime(m0, {"X": net.feeds["X"].transpose(1, 0, 2).copy()})
    for k, (g, w) in enumerate(zip(got, want0)):
        w = w.transpose(2, 0, 1, 3) if w.ndim == 4 else w.transpose(1, 0, 2)
        assert_close(g, w, what=f"output {k} vs onnxruntime (layout 0)")


def test_activations_and_clip() -> None:
    """Alternate activations with alpha/beta consumed in order, and clip (onnx.reference ignores
    both: onnxruntime is the oracle)."""
    net = Net(t=3, b=2, i=5)
    net.add("GRU", 7, "bidirectional", init_h=True, activations=["HardSigmoid", "Relu", "Sigmoid", "LeakyRelu"],
            activation_alpha=[0.3, 0.05], activation_beta=[0.4])
    net.add("GRU", 7, clip=0.4, linear_before_reset=1)
    net.add("LSTM", 6, "reverse", peep=True, init_c=True, clip=0.7,
            activations=["Sigmoid", "Softsign", "ScaledTanh"], activation_alpha=[1.5], activation_beta=[0.7])
    net.add("LSTM", 6, activations=["HardSigmoid", "Affine", "Tanh"], activation_alpha=[0.25, 0.5],
            activation_beta=[0.45, 0.1])
    net.add("RNN", 8, activations=["ThresholdedRelu"], activation_alpha=[0.2], clip=1.5)
    check_model(net.model(), net.feeds, reference=False)


def test_sequence_lens() -> None:
    """Run-time lengths (zeros in Y past each length, the reverse direction starts at len - 1),
    and constant lengths all equal to seq_length (dropped at import)."""
    lens = np.array([4, 2, 0], np.int32)  # length 0: zeros everywhere, also in Y_h / Y_c
    net = Net(t=4, b=3, i=3)
    net.add("GRU", 5, "bidirectional", init_h=True, seq=lens, seq_runtime=True)
    net.add("LSTM", 6, "bidirectional", init_h=True, peep=True, seq=lens, seq_runtime=True)
    net.add("LSTM", 6, "reverse", seq=np.full(3, 4), init_c=True)
    check_model(net.model(), net.feeds, reference=False)
    g = import_model(net.model())
    rnns = [n for n in g.nodes if n.op in ("GRU", "LSTM")]
    assert [bool(n.inputs[7]) for n in rnns] == [True, True, False]  # ONNX order until pack-rnn


def test_runtime_weights() -> None:
    """W, R, B, P fed at run time: packed by RNNPack nodes (target pass pack-rnn) into the
    kernel layout."""
    net = Net(t=2, b=1, i=4)
    net.add("GRU", 5, "bidirectional", runtime_w=True)
    net.add("LSTM", 18, "reverse", peep=True, init_h=True, runtime_w=True)
    g = import_model(net.model())
    assert "RNNPack" not in [n.op for n in g.nodes]
    ops = [n.op for n in run_pipeline(g, target_passes(get_profile("host"))).nodes]
    assert ops.count("RNNPack") == 4 + 5
    check_model(net.model(), net.feeds)


@pytest.mark.parametrize("device", ["rpi4", "rpi3"])
def test_rnn_arm(device: str) -> None:
    net = Net(t=3, b=2, i=5)
    net.add("GRU", 21, "bidirectional", init_h=True)
    net.add("GRU", 9, linear_before_reset=1)
    net.add("LSTM", 10, "reverse", peep=True, init_h=True, init_c=True)
    check_model(net.model(), net.feeds, device=device, reference=False)


def test_unrolled_gru_cell() -> None:
    """The unrolled form exporters write (MatMul / Slice / Sigmoid / Tanh / Mul / Sub / Add)
    compiles through the ordinary ops."""
    h, i = 8, 6
    wt, rt = rand(i, 3 * h, seed=1, low=-0.5, high=0.5), rand(h, 3 * h, seed=2, low=-0.5, high=0.5)
    bw, br = rand(3 * h, seed=3), rand(3 * h, seed=4)

    def sl(name: str, src: str, k: int) -> onnx.NodeProto:
        return helper.make_node("Slice", [src, f"s{k}", f"e{k}", "ax"], [name])

    nodes = [helper.make_node("MatMul", ["x", "wt"], ["gx0"]), helper.make_node("Add", ["gx0", "bw"], ["gx"]),
             helper.make_node("MatMul", ["h", "rt"], ["gh0"]), helper.make_node("Add", ["gh0", "br"], ["gh"]),
             sl("xz", "gx", 0), sl("xr", "gx", 1), sl("xn", "gx", 2),
             sl("hz", "gh", 0), sl("hr", "gh", 1), sl("hn", "gh", 2),
             helper.make_node("Add", ["xz", "hz"], ["z0"]), helper.make_node("Sigmoid", ["z0"], ["z"]),
             helper.make_node("Add", ["xr", "hr"], ["r0"]), helper.make_node("Sigmoid", ["r0"], ["r"]),
             helper.make_node("Mul", ["r", "hn"], ["rn"]), helper.make_node("Add", ["xn", "rn"], ["n0"]),
             helper.make_node("Tanh", ["n0"], ["n"]), helper.make_node("Sub", ["h", "n"], ["d"]),
             helper.make_node("Mul", ["z", "d"], ["zd"]), helper.make_node("Add", ["n", "zd"], ["hnew"])]
    inits = {"wt": wt, "rt": rt, "bw": bw, "br": br, "ax": np.array([1], np.int64)}
    for k in range(3):
        inits[f"s{k}"], inits[f"e{k}"] = np.array([k * h], np.int64), np.array([(k + 1) * h], np.int64)
    m = make_model(nodes, [("x", F, [1, i]), ("h", F, [1, h])], [("hnew", F, None)], inits)
    check_model(m, {"x": rand(1, i, seed=5), "h": rand(1, h, seed=6, low=-1, high=1)})


def _one(op: str, **attrs: object) -> onnx.ModelProto:
    net = Net(t=2, b=1, i=3)
    net.add(op, 4, **attrs)
    return net.model()


@pytest.mark.parametrize("op,attrs,msg", [
    ("GRU", {"activations": ["Sigmoid", "Elu"]}, "activation 'Elu' is not supported"),
    ("LSTM", {"activations": ["Sigmoid", "Tanh"]}, "expected 3 activations"),
    ("GRU", {"seq": np.array([3])}, r"sequence_lens \[3\] outside \[0, 2\]"),
    ("GRU", {"clip": -1.0}, "clip must be a positive finite number"),
    ("LSTM", {"clip": float("nan")}, "clip must be a positive finite number"),
])
def test_errors(op: str, attrs: dict, msg: str) -> None:
    with pytest.raises(ModelError, match=msg):
        import_model(_one(op, **attrs))


def _block_pruned(net: Net, k: int, density: float) -> None:
    """Zero whole 1x8 blocks (8 consecutive hidden units of one gate x one input j) of node k's R."""
    r = net.inits[f"R{k}"]
    d, gh, h = r.shape
    g = gh // h
    keep = np.random.default_rng(k).random((d, g, -(-h // 8), h)) < density
    mask = np.repeat(keep, 8, axis=2)[:, :, :h, :].reshape(d, gh, h)
    net.inits[f"R{k}"] = (r * mask).astype(np.float32)


@pytest.mark.parametrize("device", ["host", "rpi3"])
def test_block_sparse_recurrent(device: str) -> None:
    """Constant R with >= 60% zero 1x8 blocks is read block-sparse (zero blocks never loaded)."""
    net = Net(t=3, b=2, i=5)
    net.add("GRU", 24, "bidirectional", init_h=True)
    net.add("GRU", 13, "reverse", linear_before_reset=1)
    net.add("LSTM", 20, "bidirectional", peep=True, init_h=True, init_c=True)
    net.add("RNN", 16, init_h=True)
    net.add("GRU", 16)  # stays dense: half of its blocks are non-zero
    for k in range(4):
        _block_pruned(net, k, 0.2)
    _block_pruned(net, 4, 0.7)
    g = run_pipeline(import_model(net.model()), target_passes(get_profile(device)), dump_initial=False)
    kinds = [n.attrs["sparse"]["format"] for n in g.nodes if n.op in ("GRU", "LSTM", "RNN")]
    assert kinds == ["bsr"] * 4 + ["dense"]  # the cost rule's choice (edgec/sparsity/rnn.py)
    check_model(net.model(), net.feeds, device=device, reference=device == "host")

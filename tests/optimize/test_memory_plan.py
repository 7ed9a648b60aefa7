"""The arena planner: no two buffers alive at the same step overlap; reuse makes it small."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.importer import import_model
from edgec.ir import format_graph
from edgec.optimize.memory_plan import ALIGN, READ_SLACK, alias_roots, plan_memory
from edgec.pipeline import run_pipeline, target_passes
from edgec.targets import get_profile
from tests.helpers import check_model, make_model


def _random_dag(seed: int, n: int = 30):
    rng = np.random.default_rng(seed)
    values = ["x"]
    nodes = []
    sizes = {"x": 16}
    for k in range(n):
        a, b = rng.choice(values, 2)
        op = rng.choice(["Add", "Mul", "Max"])
        out = f"v{k}"
        nodes.append(helper.make_node(op, [str(a), str(b)], [out]))
        values.append(out)
        sizes[out] = 16
    outputs = [values[-1], values[len(values) // 2]]
    return make_model(nodes, [("x", T.FLOAT, [4, 16])], [(o, T.FLOAT, None) for o in outputs])


def test_live_buffers_never_overlap() -> None:
    for seed in range(20):
        g = run_pipeline(import_model(_random_dag(seed)))
        plan = plan_memory(g)
        roots = alias_roots(g)
        steps = len(g.nodes)
        live: dict[str, tuple[int, int]] = {}
        for name in g.inputs:
            live[name] = (-1, steps)
        for s, n in enumerate(g.nodes):
            for o in n.outputs:
                live.setdefault(roots[o][0] if o in roots else o, (s, s))
            for i in n.inputs:
                r = roots[i][0] if i in roots else i
                if r in live:
                    live[r] = (live[r][0], max(live[r][1], s))
        for o in g.outputs:
            r = roots[o][0] if o in roots else o
            live[r] = (live[r][0], steps)
        items = list(live.items())
        for i, (a, (fa, la)) in enumerate(items):
            oa, sa = plan.offsets[a], g.values[a].nbytes
            assert oa % ALIGN == 0 and oa + sa <= plan.arena_bytes
            for b, (fb, lb) in items[i + 1:]:
                if la < fb or lb < fa:
                    continue
                ob, sb = plan.offsets[b], g.values[b].nbytes
                assert oa + sa <= ob or ob + sb <= oa, f"seed {seed}: {a} and {b} overlap while both live"


def test_chain_reuses_memory_and_matches() -> None:
    nodes = [helper.make_node("Tanh" if k % 2 else "Relu", [f"v{k}"], [f"v{k + 1}"]) for k in range(12)]
    m = make_model(nodes, [("v0", T.FLOAT, [64, 64])], [("v12", T.FLOAT, None)])
    plan = plan_memory(run_pipeline(import_model(m)))
    assert plan.arena_bytes <= 3 * 64 * 64 * 4 + READ_SLACK < plan.sum_of_sizes
    check_model(m, {"v0": np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)})


def test_dump_ir_shows_every_pass() -> None:
    m = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", T.FLOAT, [2])], [("y", T.FLOAT, None)])
    dumps: list[str] = []
    g = run_pipeline(import_model(m), dump=dumps.append)
    assert dumps[0].startswith("== after import ==") and any("fuse-activation" in d for d in dumps)
    assert "Relu(%x:float32[2])" in format_graph(g)


def _concat_model(reverse: bool):
    """Producers of every kernel family feeding one channel Concat (plus a graph input, a value
    used twice in it and a value with another consumer); `reverse` flips their order, so each
    producer is the last writer next to its slab in one of the two variants."""
    rng = np.random.default_rng(3)
    init = {"w3": rng.uniform(-0.3, 0.3, (16, 16, 3, 3)).astype(np.float32),
            "w1": rng.uniform(-0.3, 0.3, (5, 16, 1, 1)).astype(np.float32),
            "ws": rng.uniform(-0.3, 0.3, (7, 16, 1, 1)).astype(np.float32),
            "sc": np.array([1, 1, 2, 2], np.float32)}
    producers = {"a": helper.make_node("Conv", ["x", "w3"], ["a"], pads=[1] * 4),  # Winograd
                 "d": helper.make_node("Conv", ["x", "w1"], ["d"]),                 # 1x1, tail tile
                 "b": helper.make_node("Relu", ["x"], ["b"]),                       # elementwise
                 "p": helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
                 "q": helper.make_node("Conv", ["p", "ws"], ["q"]),
                 "c": helper.make_node("Resize", ["q", "", "sc"], ["c"], mode="nearest")}
    order = ["p", "q", "c", "b", "d", "a"] if reverse else ["a", "d", "b", "p", "q", "c"]
    nodes = [producers[k] for k in order]
    nodes += [helper.make_node("Concat", ["d", "a", "x", "b", "c", "b"], ["y"], axis=1),
              helper.make_node("Add", ["a", "b"], ["z"])]
    return make_model(nodes, [("x", T.FLOAT, [1, 16, 12, 20])], [("y", T.FLOAT, None), ("z", T.FLOAT, None)], init)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("device", ["host", "rpi4"])
def test_concat_inputs_written_in_place(reverse: bool, device: str) -> None:
    m = _concat_model(reverse)
    g = run_pipeline(run_pipeline(import_model(m)).copy(), target_passes(get_profile(device)))
    assert "ConvWinograd" in {n.op for n in g.nodes}
    concat = next(n for n in g.nodes if n.op == "Concat")
    # the graph input and the value used twice stay copies; the kernels' outputs are slabs
    assert concat.attrs["alias_inputs"] == [True, True, False, False, True, False], concat.attrs
    plan = plan_memory(g)
    base, pos = plan.offsets["y"], 0
    for x, ok in zip(concat.inputs, concat.attrs["alias_inputs"]):
        if ok:
            assert plan.offsets[x] == base + pos, x
        pos += g.values[x].nbytes
    x = np.random.default_rng(4).standard_normal((1, 16, 12, 20)).astype(np.float32)
    check_model(m, {"x": x}, device=device)

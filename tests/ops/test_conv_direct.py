"""The register-blocked conv paths (ConvDirect, ConvOcvec, DepthwiseDirect): chosen where they apply, and
exact against onnxruntime across tile tails, strides, dilations, fused activations and targets."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.importer import import_model
from edgec.pipeline import run_pipeline, target_passes
from edgec.targets import get_profile
from tests.helpers import AVX2, check_model, make_model, rand, with_epilogue


def _conv_model(c: int, m: int, hw: tuple[int, int], k: int, stride: int, pad: int, group: int = 1,
                dil: int = 1, act: str | None = None):
    w = rand(m, c // group, k, k, seed=1, low=-0.5, high=0.5)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c" if act else "y"], strides=[stride] * 2,
                              pads=[pad] * 4, group=group, dilations=[dil] * 2)]
    if act:
        nodes.append(helper.make_node(act, ["c"], ["y"]))
    return make_model(nodes, [("x", T.FLOAT, [1, c, *hw])], [("y", T.FLOAT, None)],
                      {"w": w, "b": rand(m, seed=2)})


def _ops_after_target_passes(model, device: str = "host") -> set[str]:
    g = run_pipeline(import_model(model))
    return {n.op for n in run_pipeline(g.copy(), target_passes(get_profile(device))).nodes}


def test_dispatch() -> None:
    assert "ConvDirect" in _ops_after_target_passes(_conv_model(8, 16, (9, 40), 3, 1, 1))
    assert "ConvOcvec" in _ops_after_target_passes(_conv_model(8, 16, (9, 9), 3, 1, 1))  # a short row
    assert "DepthwiseDirect" in _ops_after_target_passes(_conv_model(8, 8, (9, 9), 3, 1, 1, group=8))
    assert "Conv" in _ops_after_target_passes(_conv_model(8, 8, (9, 9), 3, 3, 0))  # stride 3: generic


@pytest.mark.parametrize("c,m,hw,k,stride,pad,dil", [
    (3, 5, (11, 13), 3, 1, 1, 1),     # oc tail (5 % mr), ow tail
    (16, 24, (20, 37), 3, 2, 1, 1),   # stride 2
    (8, 7, (15, 15), 5, 1, 2, 2),     # dilation 2
    (12, 33, (7, 7), 1, 1, 0, 1),     # 1x1 flattened plane
    (4, 9, (10, 29), 1, 2, 0, 1),     # 1x1 stride 2
    (3, 8, (31, 31), 7, 2, 3, 1),     # 7x7 stem
])
def test_direct_conv_shapes(c: int, m: int, hw: tuple, k: int, stride: int, pad: int, dil: int) -> None:
    check_model(_conv_model(c, m, hw, k, stride, pad, dil=dil), {"x": rand(1, c, *hw, seed=3)})


@pytest.mark.parametrize("act", ["Relu", "Sigmoid", "HardSwish", "Tanh"])
def test_fused_activation_epilogue(act: str) -> None:
    check_model(_conv_model(6, 10, (9, 19), 3, 1, 1, act=act), {"x": rand(1, 6, 9, 19, seed=4)})


@pytest.mark.parametrize("hw,stride,k", [((17, 23), 1, 3), ((16, 30), 2, 3), ((9, 9), 1, 5)])
def test_depthwise_direct(hw: tuple, stride: int, k: int) -> None:
    m = _conv_model(12, 12, hw, k, stride, k // 2, group=12, act="Relu")
    check_model(m, {"x": rand(1, 12, *hw, seed=5)})


@pytest.mark.parametrize("device", ["rpi4", "rpi3"])
def test_direct_paths_arm(device: str) -> None:
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["a"], pads=[1] * 4),
             helper.make_node("Relu", ["a"], ["r"]),
             helper.make_node("Conv", ["r", "w2", "b2"], ["d"], pads=[1] * 4, strides=[2, 2], group=6),
             helper.make_node("Conv", ["d", "w3", "b3"], ["y"])]
    init = {"w1": rand(6, 3, 3, 3, seed=6), "b1": rand(6, seed=7), "w2": rand(6, 1, 3, 3, seed=8),
            "b2": rand(6, seed=9), "w3": rand(5, 6, 1, 1, seed=10), "b3": rand(5, seed=11)}
    m = make_model(nodes, [("x", T.FLOAT, [1, 3, 13, 21])], [("y", T.FLOAT, None)], init)
    ops = _ops_after_target_passes(m, device)
    assert "DepthwiseDirect" in ops and ops & {"ConvDirect", "ConvOcvec"}, ops
    check_model(m, {"x": np.asarray(rand(1, 3, 13, 21, seed=12))}, device=device)


@pytest.mark.parametrize("c,m,hw,k,stride", [(12, 20, (7, 7), 3, 1), (8, 64, (5, 6), 3, 2), (4, 9, (3, 3), 3, 1)])
def test_output_channel_vectorized_small_maps(c: int, m: int, hw: tuple, k: int, stride: int) -> None:
    model = _conv_model(c, m, hw, k, stride, 1, act="Relu")
    g = run_pipeline(run_pipeline(import_model(model)).copy(), target_passes(get_profile(AVX2)))
    assert any(n.op == "ConvOcvec" and "mp" in n.attrs["schedule"] for n in g.nodes)
    check_model(model, {"x": rand(1, c, *hw, seed=13)}, device=AVX2)
    check_model(model, {"x": rand(1, c, *hw, seed=13)})
    check_model(model, {"x": rand(1, c, *hw, seed=13)}, device="rpi4")


@pytest.mark.parametrize("device", ["rpi4", "rpi3"])
@pytest.mark.parametrize("c,m,hw,k,stride,dil,op", [
    (8, 32, (13, 40), 3, 1, 1, "ConvDirect"),   # too few channels for Winograd
    (6, 24, (12, 30), 3, 1, 2, "ConvDirect"),   # dilation: the tap table's offsets
    (5, 16, (9, 26), 5, 1, 1, "ConvDirect"),
    (12, 20, (7, 7), 3, 1, 1, "ConvOcvec"),     # armv7's 5x2 tile, a partial channel block
    (8, 64, (11, 10), 3, 2, 1, "ConvOcvec"),
])
def test_tap_loops_arm(c: int, m: int, hw: tuple, k: int, stride: int, dil: int, op: str, device: str) -> None:
    """On ARM the kernel taps are a loop (offsets from a table), not unrolled: unrolled, LLVM
    loaded ahead across taps and spilled (tests/asm)."""
    model = _conv_model(c, m, hw, k, stride, k // 2 * dil, dil=dil, act="Relu")
    assert op in _ops_after_target_passes(model, device)
    check_model(model, {"x": rand(1, c, *hw, seed=18)}, device=device)


@pytest.mark.parametrize("hw,k,stride,pads,dil", [
    ((2, 3), 3, 1, [1, 1, 1, 1], 1),      # every output is a border output
    ((16, 16), 3, 2, [0, 0, 1, 1], 1),    # asymmetric (SAME_UPPER-like) padding
    ((12, 40), 3, 1, [2, 2, 2, 2], 2),    # dilation
    ((9, 11), 5, 2, [2, 1, 2, 3], 1),
    ((20, 7), 3, 1, [0, 0, 0, 0], 1),     # no padding
])
def test_depthwise_in_kernel_padding(hw: tuple, k: int, stride: int, pads: list, dil: int) -> None:
    c = 10
    w = rand(c, 1, k, k, seed=14, low=-0.5, high=0.5)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], strides=[stride] * 2, pads=pads, group=c,
                              dilations=[dil] * 2)]
    m = make_model(nodes, [("x", T.FLOAT, [1, c, *hw])], [("y", T.FLOAT, None)], {"w": w, "b": rand(c, seed=15)})
    ops = _ops_after_target_passes(m)
    assert "DepthwiseDirect" in ops and "Pad" not in ops
    check_model(m, {"x": rand(1, c, *hw, seed=16)})
    check_model(m, {"x": rand(1, c, *hw, seed=16)}, device="rpi3")


@pytest.mark.parametrize("c,m,group,k,stride,hw", [
    (12, 24, 3, 1, 1, (10, 10)),   # ShuffleNet-style grouped pointwise
    (8, 12, 2, 3, 2, (11, 13)),    # grouped 3x3, stride 2
    (6, 12, 6, 3, 1, (9, 9)),      # depthwise with channel multiplier 2
])
def test_grouped_direct(c: int, m: int, group: int, k: int, stride: int, hw: tuple) -> None:
    model = _conv_model(c, m, hw, k, stride, k // 2, group=group, act="Relu")
    assert "ConvDirect" in _ops_after_target_passes(model)
    check_model(model, {"x": rand(1, c, *hw, seed=17)})
    check_model(model, {"x": rand(1, c, *hw, seed=17)}, device="rpi4")


@pytest.mark.parametrize("hw,act", [((12, 30), "Relu"), ((5, 5), "Relu"), ((12, 30), None), ((6, 7), None)])
@pytest.mark.parametrize("device", ["host", "rpi3"])
def test_residual_add_fused(hw: tuple, act: str | None, device: str) -> None:
    c = 16
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1] * 4),
             helper.make_node("Add", ["x", "c"], ["s" if act else "y"])]
    if act:
        nodes.append(helper.make_node(act, ["s"], ["y"]))
    m = make_model(nodes, [("x", T.FLOAT, [1, c, *hw])], [("y", T.FLOAT, None)],
                   {"w": rand(c, c, 3, 3, seed=18, low=-0.3, high=0.3), "b": rand(c, seed=19)})
    ops = _ops_after_target_passes(m, device)
    assert "Add" not in ops and (act is None or act not in ops), ops
    check_model(m, {"x": rand(1, c, *hw, seed=20)}, device=device)


@pytest.mark.parametrize("act,residual", [("Relu", True), (None, False)])
def test_k_blocked_pointwise(act: str | None, residual: bool) -> None:
    # 640 input channels: the reduction runs in K blocks with partial sums in the output; the
    # 121-column plane ends in a 1-column tail tile (split accumulator chains).
    c, m, hw = 640, 20, 11
    nodes = with_epilogue([helper.make_node("Conv", ["x", "w", "b"], ["c"])], "r" if residual else None, act)
    inputs = [("x", T.FLOAT, [1, c, hw, hw])] + ([("r", T.FLOAT, [1, m, hw, hw])] if residual else [])
    model = make_model(nodes, inputs, [("y", T.FLOAT, None)],
                       {"w": rand(m, c, 1, 1, seed=21, low=-0.1, high=0.1), "b": rand(m, seed=22)})
    g = run_pipeline(run_pipeline(import_model(model)).copy(), target_passes(get_profile(AVX2)))
    conv = next(n for n in g.nodes if n.op == "ConvDirect")
    assert conv.attrs["schedule"].get("kc") == 160, conv.attrs["schedule"]
    feeds = {"x": rand(1, c, hw, hw, seed=23)} | ({"r": rand(1, m, hw, hw, seed=24)} if residual else {})
    check_model(model, feeds, device=AVX2)


@pytest.mark.parametrize("c,m,hw,act,residual", [
    (96, 40, (7, 7), "Relu", True),     # 49 pixels: 5-wide tiles and a 4-pixel tail; 40 = 2.5 vectors
    (33, 16, (3, 5), None, False),      # a plane smaller than one tile
    (64, 100, (8, 8), "Sigmoid", False),
])
@pytest.mark.parametrize("device", [AVX2, "rpi4", "rpi3"])
def test_pointwise_panels(c: int, m: int, hw: tuple, act: str | None, residual: bool, device: str) -> None:
    # Small-plane pointwise convs run channel-vectorized on packed input panels.
    nodes = with_epilogue([helper.make_node("Conv", ["x", "w", "b"], ["c"])], "r" if residual else None, act)
    inputs = [("x", T.FLOAT, [1, c, *hw])] + ([("r", T.FLOAT, [1, m, *hw])] if residual else [])
    model = make_model(nodes, inputs, [("y", T.FLOAT, None)],
                       {"w": rand(m, c, 1, 1, seed=26, low=-0.2, high=0.2), "b": rand(m, seed=27)})
    g = run_pipeline(run_pipeline(import_model(model)).copy(), target_passes(get_profile(device)))
    conv = next(n for n in g.nodes if n.op == "ConvOcvec")
    assert conv.attrs.get("panels") and "PackPanels" in {n.op for n in g.nodes}, conv.attrs
    feeds = {"x": rand(1, c, *hw, seed=28)} | ({"r": rand(1, m, *hw, seed=29)} if residual else {})
    check_model(model, feeds, device=device)


def test_k_blocked_override_3x3() -> None:
    # A tuned K block on a 3x3 row-kernel conv (dilation keeps it off Winograd): same numbers.
    from edgec.kernels.conv_direct.tuning import conv_task
    from edgec.tune.keys import task_key

    model = _conv_model(32, 12, (20, 40), 3, 1, 2, dil=2, act="Relu")
    key = task_key(conv_task((1, 32, 20, 40), (12, 32, 3, 3), [1, 1], [2, 2, 2, 2], [2, 2], 1, "host"))
    overrides = {key: {"mr": 4, "nrv": 3, "kc": 8}}
    g = run_pipeline(run_pipeline(import_model(model)).copy(),
                     target_passes(get_profile("host"), overrides=overrides))
    conv = next(n for n in g.nodes if n.op == "ConvDirect")
    assert conv.attrs["schedule"].get("kc") == 8, conv.attrs
    check_model(model, {"x": rand(1, 32, 20, 40, seed=25)}, schedule_overrides=overrides)


def test_residual_add_fused_when_produced_later() -> None:
    # FPN neck: lateral 1x1 conv first, the upsampled top-down value after it, then the Add.
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["lat"]),
             helper.make_node("Conv", ["t", "w2", "b2"], ["tc"]),
             helper.make_node("Resize", ["tc", "", "sc"], ["up"], mode="nearest"),
             helper.make_node("Add", ["lat", "up"], ["y"])]
    init = {"w": rand(16, 8, 1, 1, seed=30), "b": rand(16, seed=31), "w2": rand(16, 8, 1, 1, seed=32),
            "b2": rand(16, seed=33), "sc": np.array([1, 1, 2, 2], np.float32)}
    m = make_model(nodes, [("x", T.FLOAT, [1, 8, 12, 20]), ("t", T.FLOAT, [1, 8, 6, 10])],
                   [("y", T.FLOAT, None)], init)
    ops = [n.op for n in run_pipeline(run_pipeline(import_model(m)).copy(), target_passes(get_profile("host"))).nodes]
    assert "Add" not in ops, ops
    check_model(m, {"x": rand(1, 8, 12, 20, seed=34), "t": rand(1, 8, 6, 10, seed=35)})


@pytest.mark.parametrize("c,m,hw,act", [(16, 96, (110, 110), "Relu"), (8, 40, (160, 170), None)])
def test_column_chunked_pointwise(c: int, m: int, hw: tuple, act: str | None) -> None:
    # Outputs >= 4 MB sweep columns in chunks per output-channel block (last chunk partial).
    model = _conv_model(c, m, hw, 1, 1, 0, act=act)
    g = run_pipeline(run_pipeline(import_model(model)).copy(), target_passes(get_profile("host")))
    conv = next(n for n in g.nodes if n.op == "ConvDirect")
    assert conv.attrs["schedule"].get("cw") == 64, conv.attrs["schedule"]
    check_model(model, {"x": rand(1, c, *hw, seed=36)}, reference=False)


def test_two_convs_into_one_add_terminates() -> None:
    # ResNet downsample block: conv path + 1x1 shortcut conv into one Add; one of them fuses.
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["a"], pads=[1] * 4),
             helper.make_node("Conv", ["x", "w2", "b2"], ["s"]),
             helper.make_node("Add", ["a", "s"], ["y"])]
    init = {"w": rand(8, 8, 3, 3, seed=40), "b": rand(8, seed=41), "w2": rand(8, 8, 1, 1, seed=42), "b2": rand(8, seed=43)}
    m = make_model(nodes, [("x", T.FLOAT, [1, 8, 10, 12])], [("y", T.FLOAT, None)], init)
    ops = [n.op for n in run_pipeline(run_pipeline(import_model(m)).copy(), target_passes(get_profile("host"))).nodes]
    assert "Add" not in ops, ops
    check_model(m, {"x": rand(1, 8, 10, 12, seed=44)})


@pytest.mark.parametrize("up,hw", [(2, (12, 40)), (4, (8, 32)), (2, (10, 12)), (2, (256, 320))])
@pytest.mark.parametrize("device", ["host", "rpi4", "rpi3"])
def test_upsampled_residual_fused(up: int, hw: tuple, device: str) -> None:
    # FPN top-down: lateral 1x1 conv + nearest-upsampled coarse map; the conv reads the coarse
    # map itself (no Resize node left), rows with tail tiles included.
    h, w = hw
    nodes = [helper.make_node("Conv", ["t", "w2", "b2"], ["tc"]),
             helper.make_node("Resize", ["tc", "", "sc"], ["upd"], mode="nearest",
                              coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
             helper.make_node("Conv", ["x", "w", "b"], ["lat"]),
             helper.make_node("Add", ["lat", "upd"], ["s"]),
             helper.make_node("Relu", ["s"], ["y"])]
    init = {"w": rand(16, 8, 1, 1, seed=50), "b": rand(16, seed=51), "w2": rand(16, 8, 1, 1, seed=52),
            "b2": rand(16, seed=53), "sc": np.array([1, 1, up, up], np.float32)}
    m = make_model(nodes, [("x", T.FLOAT, [1, 8, h, w]), ("t", T.FLOAT, [1, 8, h // up, w // up])],
                   [("y", T.FLOAT, None)], init)
    g = run_pipeline(run_pipeline(import_model(m)).copy(), target_passes(get_profile(device)))
    ops = [n.op for n in g.nodes]
    assert "Resize" not in ops and "Add" not in ops and "Relu" not in ops, ops
    conv = next(n for n in g.nodes if n.attrs.get("residual_upsample"))
    lanes = conv.attrs["schedule"]["lanes"]
    assert conv.attrs.get("flatten", False) == (w % lanes == 0)  # flat rows only if no vector straddles two
    if (h, w) == (256, 320) and device == "host":
        assert conv.attrs["schedule"].get("cw"), conv.attrs  # the big map keeps its column chunks
    check_model(m, {"x": rand(1, 8, h, w, seed=54), "t": rand(1, 8, h // up, w // up, seed=55)}, device=device)


@pytest.mark.parametrize("device", ["host", AVX2, "rpi4"])
@pytest.mark.parametrize("hw,k,stride,pads,dil", [
    ((14, 14), 5, 1, [2, 2, 2, 2], 1),   # MediaPipe's 5x5 depthwise layers (padded-copy path)
    ((28, 28), 5, 2, [1, 1, 2, 2], 1),   # stride 2 (even/odd column phases), TFLite SAME padding
    ((29, 31), 3, 2, [2, 1, 2, 2], 2),   # stride 2, odd width and left pad, dilation 2
    ((40, 75), 5, 2, [2, 2, 2, 2], 1),   # a 5x5 on a wide map (38 output columns, 3 vectors)
    ((3, 5), 3, 1, [1, 1, 1, 1], 1),     # rows much narrower than a vector: stores reach 4+ rows on
])
def test_depthwise_small_padded_maps(device: str, hw: tuple, k: int, stride: int, pads: list, dil: int) -> None:
    """Small padded maps and 5x5 windows run through a zero-padded copy of each channel
    (edgec/kernels/depthwise/padded.py); with 2 threads the channels split, so a store past a
    plane would race."""
    c = 21
    w = rand(c, 1, k, k, seed=17, low=-0.5, high=0.5)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["a"], strides=[stride] * 2, pads=pads, group=c,
                              dilations=[dil] * 2),
             helper.make_node("Clip", ["a", "lo", "hi"], ["y"])]
    m = make_model(nodes, [("x", T.FLOAT, [1, c, *hw])], [("y", T.FLOAT, None)],
                   {"w": w, "b": rand(c, seed=18), "lo": np.array(0, np.float32), "hi": np.array(6, np.float32)})
    check_model(m, {"x": rand(1, c, *hw, seed=19)}, device=device, reference=False)
    if device == "host":
        check_model(m, {"x": rand(1, c, *hw, seed=19)}, reference=False, threads=2)

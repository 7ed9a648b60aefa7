"""Whole-model tests: generated MobileNetV2 / ResNet-18 / U-Net built with edgec vs onnxruntime.

The generator tests at the top need only onnx + onnxruntime; the build tests compile each net
for the host and (under qemu) for rpi4 and rpi3. On a mismatch the failure message names the
first ONNX node whose output diverges (every intermediate made a graph output and compared).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgec.models import MODELS, mobilenet_v2, resnet18, unet
from tests.helpers import assert_close, run_edgec, run_onnxruntime

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "mobilenet_like.onnx"
# The exact call documented in examples/README.md.
EXAMPLE_ARGS = {"resolution": 96, "width": 0.5, "num_classes": 10, "seed": 0}

# Reduced sizes so the qemu runs stay well under a minute each. The tolerance is the project's
# default 1e-4 * max(1, |ref|): activations are kept O(1) by the generators (He init, calibrated
# BN), so float32 rounding differences stay far below it even through 50+ layers (measured:
# worst error 12% of the tolerance, on MobileNetV2).
SMALL: dict[str, Callable[[], onnx.ModelProto]] = {
    "mobilenet_v2": lambda: mobilenet_v2(resolution=96, width=0.5, num_classes=100, seed=1),
    "resnet18": lambda: resnet18(resolution=64, num_classes=100, seed=2),
    "unet": lambda: unet(resolution=64, base=8, seed=3),
}
TOL = 1e-4


def _input(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    return {"input": np.random.default_rng(seed).standard_normal(dims).astype(np.float32)}


def _with_all_outputs(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[tuple[str, str]]]:
    """A copy of `model` whose every node output is also a graph output; [(node, output)]."""
    inferred = onnx.shape_inference.infer_shapes(model)
    vi = {v.name: v for v in inferred.graph.value_info}
    m = onnx.ModelProto()
    m.CopyFrom(model)
    order = [(n.name or n.op_type, n.output[0]) for n in model.graph.node]
    for _, out in order:
        if out in vi:
            m.graph.output.append(vi[out])
    return m, order


def _first_divergence(model: onnx.ModelProto, feeds: dict[str, np.ndarray], device: str) -> str:
    """Name the first node (in graph order) whose edgec output differs from onnxruntime's."""
    m, order = _with_all_outputs(model)
    try:
        got = dict(zip([o.name for o in m.graph.output], run_edgec(m, feeds, device)))
    except Exception as exc:  # noqa: BLE001 - diagnosis only; report why it could not run
        return f"(diagnosis build failed: {type(exc).__name__}: {exc})"
    want = dict(zip([o.name for o in m.graph.output], run_onnxruntime(m, feeds)))
    ops = {n.output[0]: n.op_type for n in model.graph.node}
    for node, out in order:
        if out not in got:
            continue
        try:
            assert_close(got[out], want[out], TOL, out)
        except AssertionError as exc:
            return f"first divergence at node {node} ({ops[out]}): {exc}"
    return ("no intermediate diverges when every tensor is a graph output: the bug is in a "
            "fusion/folding pass that the extra outputs disable")


def _check(model: onnx.ModelProto, device: str, seed: int = 0) -> None:
    feeds = _input(model, seed)
    got = run_edgec(model, feeds, device)
    want = run_onnxruntime(model, feeds)
    try:
        assert_close(got[0], want[0], TOL, f"output vs onnxruntime ({device})")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_first_divergence(model, feeds, device)}") from None


# -- generators alone (onnx + onnxruntime) --------------------------------------------------

@pytest.mark.parametrize("name", sorted(SMALL))
def test_generator_structure(name: str) -> None:
    m = SMALL[name]()
    onnx.checker.check_model(m, full_check=True)
    assert [i.name for i in m.graph.input] == ["input"]
    assert [o.name for o in m.graph.output] == ["output"]
    assert m.opset_import[0].version == 17
    dims = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    assert dims[0] == 1
    # BN statistics are non-trivial so BN folding is really exercised.
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in m.graph.initializer}
    bns = [n for n in m.graph.node if n.op_type == "BatchNormalization"]
    assert bns
    for n in bns:
        scale, bias, mean, var = (inits[k] for k in n.input[1:])
        assert np.abs(mean).max() > 0.05 and np.abs(var - 1).max() > 0.05
        assert np.abs(scale - 1).max() > 0.05 and np.abs(bias).max() > 0.05


@pytest.mark.parametrize("name", sorted(SMALL))
def test_generator_output_not_degenerate(name: str) -> None:
    """Activations stay O(1) and the output varies with the input (checked with onnxruntime)."""
    m = SMALL[name]()
    a = run_onnxruntime(m, _input(m, 0))[0]
    b = run_onnxruntime(m, _input(m, 1))[0]
    assert np.isfinite(a).all()
    assert 0.03 < a.std() < 10 and np.abs(a).max() < 50
    assert np.abs(a - b).max() > 0.05


def test_generator_structure_details() -> None:
    ops = lambda m: [n.op_type for n in m.graph.node]  # noqa: E731
    mb = ops(mobilenet_v2(96, 0.5, 10))
    assert mb.count("Add") == 10 and mb.count("Clip") == 35 and mb.count("BatchNormalization") == 52
    assert mb[-3:] == ["GlobalAveragePool", "Flatten", "Gemm"]
    rn = resnet18(64, 10)
    assert ops(rn).count("Conv") == 20 and ops(rn).count("Add") == 8 and ops(rn).count("MaxPool") == 1
    un = unet(64, 8)
    modes = [onnx.helper.get_attribute_value(a) for n in un.graph.node if n.op_type == "Resize"
             for a in n.attribute if a.name == "mode"]
    assert sorted(modes) == [b"linear", b"nearest", b"nearest"]
    assert ops(un).count("Concat") == 3 and ops(un)[-1] == "Sigmoid"
    dims = [d.dim_value for d in un.graph.output[0].type.tensor_type.shape.dim]
    assert dims == [1, 1, 64, 64]


def test_generators_deterministic() -> None:
    for fn in (lambda seed: mobilenet_v2(96, 0.35, 10, seed), lambda seed: unet(32, 4, seed=seed)):
        assert fn(5).SerializeToString() == fn(5).SerializeToString()
        assert fn(5).SerializeToString() != fn(6).SerializeToString()
    # Same bytes on every call, and the weights do not depend on the resolution (BN is
    # calibrated at a fixed size), as for a real net evaluated at several resolutions.
    a, b, c = resnet18(64, 10, seed=5), resnet18(64, 10, seed=5), resnet18(96, 10, seed=5)
    assert a.SerializeToString() == b.SerializeToString()
    assert a.graph.initializer == c.graph.initializer


@pytest.mark.parametrize("call", [lambda: mobilenet_v2(100), lambda: resnet18(16),
                                  lambda: unet(60), lambda: unet(64, in_channels=0),
                                  lambda: mobilenet_v2(96, width=0)])
def test_generator_bad_arguments(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()


def test_example_model_is_generated() -> None:
    """examples/mobilenet_like.onnx must be byte-identical to what the generator produces."""
    want = mobilenet_v2(**EXAMPLE_ARGS).SerializeToString()
    assert EXAMPLE.read_bytes() == want, ("examples/mobilenet_like.onnx drifted from the generator; "
                                          "regenerate it as examples/README.md says")


def test_cli(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    cmd = [sys.executable, "-m", "edgec.models", "unet", "-o", str(out), "--resolution", "32",
           "--seed", "4", "--base", "4"]
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
    assert out.read_bytes() == unet(resolution=32, base=4, seed=4).SerializeToString()
    listing = subprocess.run([sys.executable, "-m", "edgec.models"], check=True, cwd=ROOT,
                             capture_output=True, text=True).stdout
    assert all(name in listing for name in MODELS)
    bad = subprocess.run([sys.executable, "-m", "edgec.models", "resnet18", "-o", str(out), "--width", "2"],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "does not take --width" in bad.stderr


# -- edgec builds vs onnxruntime ------------------------------------------------------------

@pytest.mark.parametrize("device", ["host", "rpi4", "rpi3"])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_model(name: str, device: str) -> None:
    _check(SMALL[name](), device)


@pytest.mark.parametrize("device", ["host", "rpi4", "rpi3"])
def test_example_model(device: str) -> None:
    _check(onnx.load(str(EXAMPLE)), device, seed=7)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet18"])
def test_full_size_host(name: str) -> None:
    """The real 224x224, 1000-class nets on the host."""
    _check(MODELS[name](resolution=224, seed=0), "host")

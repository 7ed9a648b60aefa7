"""Kernel contracts (edgec/kernels/*/spec.py): every internal op has a typed attrs spec, and a
node whose attrs do not match it is refused after the pass that made it and before lowering."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgec.codegen.kernel import LOWERINGS
from edgec.errors import InternalError
from edgec.importer import import_model
from edgec.ir.graph import Graph
from edgec.kernels import lowerings  # noqa: F401  (registers every lowering)
from edgec.kernels.specs import SPECS, attrs_errors, is_parallel
from edgec.pipeline import run_pipeline, target_passes
from edgec.targets import get_profile
from tests.helpers import make_model, rand


def _conv_model() -> onnx.ModelProto:
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1] * 4),
             helper.make_node("Relu", ["c"], ["y"])]
    return make_model(nodes, [("x", T.FLOAT, [1, 8, 12, 40])], [("y", T.FLOAT, None)],
                      {"w": rand(16, 8, 3, 3, seed=1), "b": rand(16, seed=2)})


def _lowered(device: str = "host") -> Graph:
    g = run_pipeline(import_model(_conv_model()))
    return run_pipeline(g.copy(), target_passes(get_profile(device)))


def test_every_internal_op_has_a_spec() -> None:
    internal = {op for op in LOWERINGS if not onnx.defs.has(op)}
    assert internal - set(SPECS) == set()
    assert {"ConvDirect", "ConvOcvec", "Gemv", "QConvDirect", "SparseDense", "RNNPack"} <= set(SPECS)
    assert is_parallel("ConvOcvec") and not is_parallel("PackPanels")


@pytest.mark.parametrize("change,message", [
    (lambda a: a.pop("kernel"), "missing 'kernel'"),
    (lambda a: a.update(strdes=[1, 1]), "unknown key 'strdes'"),
    (lambda a: a.update(strides=[1.0, 1]), "'strides' = [1.0, 1] is not list[int]"),
    (lambda a: a.update(residual=1), "'residual' = 1 is not bool"),
    (lambda a: a["schedule"].pop("mr"), "'schedule'"),
    (lambda a: a["schedule"].update(mp=4), "'schedule'"),  # an ocvec schedule on the row kernel
])
def test_bad_attrs_refused_after_the_pass(change, message: str) -> None:  # noqa: ANN001
    def corrupt(g: Graph) -> Graph:
        change(next(n for n in g.nodes if n.op == "ConvDirect").attrs)
        return g

    passes = target_passes(get_profile("host"))
    g = run_pipeline(import_model(_conv_model()))
    with pytest.raises(InternalError, match="ConvDirect node .* do not match its kernel spec") as exc:
        run_pipeline(g, [*passes, ("corrupt", corrupt)])
    assert message in str(exc.value)


def test_bad_attrs_refused_before_lowering() -> None:
    from edgec.codegen.executor import build_module
    from edgec.optimize.memory_plan import plan_memory
    from edgec.options import BuildOptions

    g = _lowered()
    conv = next(n for n in g.nodes if n.op == "ConvDirect")
    conv.attrs["activation"] = "Relu"  # not (op, attrs)
    with pytest.raises(InternalError, match="'activation' = 'Relu' is not"):
        build_module(g, plan_memory(g), get_profile("host"), "m", BuildOptions())


def test_specs_accept_what_the_passes_write() -> None:
    for device in ("host", "rpi4", "rpi3"):
        g = _lowered(device)
        ops = {n.op for n in g.nodes}
        assert ops & {"ConvDirect", "ConvOcvec"}, ops
        assert all(attrs_errors(n.op, n.attrs) == [] for n in g.nodes)

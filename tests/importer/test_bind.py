"""Shape operands fed as graph inputs: refused up front naming --bind, frozen by --bind / bind=,
and bound per value set by edgec.onnx_backend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper

import edgec
from edgec.errors import EdgecError
from edgec.importer.bind import UnboundShapeOperandError
from edgec.onnx_backend import EdgecBackend
from tests.cli.test_errors import assert_clean_failure, edgec_cli
from tests.helpers import assert_close, rand, run_onnxruntime


def _model(opset: int = 18) -> onnx.ModelProto:
    """Slice(x, starts, ends) -> ReduceSum(axes) -> Reshape(shape): four shape operands as inputs."""
    nodes = [helper.make_node("Slice", ["x", "starts", "ends"], ["s"]),
             helper.make_node("ReduceSum", ["s", "axes"], ["r"], keepdims=1),
             helper.make_node("Reshape", ["r", "shape"], ["y"])]
    g = helper.make_graph(nodes, "bind", [
        helper.make_tensor_value_info("x", T.FLOAT, [4, 6, 5]),
        helper.make_tensor_value_info("starts", T.INT64, [2]),
        helper.make_tensor_value_info("ends", T.INT64, [2]),
        helper.make_tensor_value_info("axes", T.INT64, [1]),
        helper.make_tensor_value_info("shape", T.INT64, ["n"])],
        [helper.make_tensor_value_info("y", T.FLOAT, ["a", "b"])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


BIND = {"starts": [1, 0], "ends": [3, 4], "axes": [2], "shape": [-1, 4]}


def _feeds(**over: object) -> dict[str, np.ndarray]:
    return {"x": rand(4, 6, 5, seed=1), **{k: np.asarray(v, np.int64) for k, v in {**BIND, **over}.items()}}


def test_unbound_is_refused_naming_the_flag(tmp_path: Path) -> None:
    with pytest.raises(UnboundShapeOperandError, match="--bind") as exc:
        edgec.build(_model(), out_dir=tmp_path / "b")
    assert exc.value.names == ["axes", "ends", "shape", "starts"]  # all of them, at once
    assert "input 1 of ReduceSum node" in str(exc.value)
    assert not (tmp_path / "b").exists()


def test_bound_build_matches_onnxruntime(tmp_path: Path) -> None:
    bundle = edgec.build(_model(), out_dir=tmp_path / "b", bind=BIND)
    assert [t["name"] for t in bundle.manifest["inputs"]] == ["x"]
    assert bundle.manifest["build_options"]["bind"] == BIND
    feeds = _feeds()
    got = edgec.load(bundle.path).run({"x": feeds["x"]})["y"]
    assert_close(got, run_onnxruntime(_model(), feeds)[0])


@pytest.mark.parametrize("bind,needle", [
    ({"nope": [1]}, "no graph input of that name"),
    ({**BIND, "axes": [1.5]}, "do not fit the input's type int64"),
    ({**BIND, "starts": [1]}, "1 value(s) given, the input has shape [2]"),
    ({**BIND, "axes": ["a"]}, "expected up to"),
    ({**BIND, "axes": [[1], [2, 3]]}, "expected up to"),
])
def test_bad_bindings(bind: dict, needle: str, tmp_path: Path) -> None:
    with pytest.raises(EdgecError) as exc:
        edgec.build(_model(), out_dir=tmp_path / "b", bind=bind)
    assert needle in str(exc.value)


def test_cli(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(_model(), path)
    assert_clean_failure(edgec_cli("build", str(path), "-o", str(tmp_path / "a")), 2, "--bind", "'starts'")
    assert_clean_failure(edgec_cli("build", str(path), "-o", str(tmp_path / "a"), "--bind", "axes"), 2, "--bind")
    args = [a for k, v in BIND.items() for a in ("--bind", f"{k}={','.join(map(str, v))}")]
    proc = edgec_cli("build", str(path), "-o", str(tmp_path / "b"), *args)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["build_options"]["bind"] == BIND


def test_onnx_backend_builds_per_value_set() -> None:
    rep = EdgecBackend.prepare(_model())
    for over in ({}, {"axes": [0], "shape": [2, -1]}, {}):
        feeds = _feeds(**over)
        got = rep.run([feeds[k] for k in ("x", "starts", "ends", "axes", "shape")])[0]
        assert_close(got, run_onnxruntime(_model(), feeds)[0])
    assert len(rep._builds) == 2  # the third run reused the first build

"""A model whose declared shapes (graph outputs, value_info) disagree with its ops, as some
exporters write them: onnxruntime warns and runs it, so edgec trusts inference with one warning."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

import edgec
from edgec.errors import EdgecWarning
from tests.cli.test_errors import edgec_cli
from tests.helpers import check_model, rand


def _model() -> onnx.ModelProto:
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Flatten", ["r"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", T.FLOAT, [2, 3, 4])],
                          [helper.make_tensor_value_info("y", T.FLOAT, [2, 3, 4])],  # rank 3: wrong
                          value_info=[helper.make_tensor_value_info("r", T.FLOAT, [5])])  # wrong too
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_inference_is_trusted_with_one_warning(tmp_path: Path) -> None:
    with pytest.warns(EdgecWarning, match="declared shapes disagree") as record:
        bundle = edgec.build(_model(), out_dir=tmp_path / "b")
    assert len(record) == 1
    assert bundle.manifest["outputs"][0]["shape"] == [2, 12]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgecWarning)
        check_model(_model(), {"x": rand(2, 3, 4, seed=1)}, reference=False)


def test_cli_prints_one_warning_line(tmp_path: Path) -> None:
    onnx.save(_model(), tmp_path / "m.onnx")
    proc = edgec_cli("build", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "b"))
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "declared shapes" in ln]
    assert len(lines) == 1 and lines[0].startswith("warning:") and "Traceback" not in proc.stderr


def test_disagreement_seen_only_after_folding(tmp_path: Path) -> None:
    """ddddocr's CRNN: a Reshape target computed from Shape nodes gives rank 3 while the graph
    output declares rank 2; the clash only shows once the target folds."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
             helper.make_node("Concat", ["n1", "rest"], ["tgt"], axis=0),
             helper.make_node("Reshape", ["x", "tgt"], ["y"])]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "i0"), numpy_helper.from_array(np.array([0], np.int64), "ax"),
             numpy_helper.from_array(np.array([4, 3], np.int64), "rest")]
    g = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", T.FLOAT, ["n", 12])],
                          [helper.make_tensor_value_info("y", T.FLOAT, ["a", "b"])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.warns(EdgecWarning, match="declared shapes disagree") as rec:
        edgec.build(m, out_dir=tmp_path / "b", input_shapes={"x": [2, 12]})
    assert len([w for w in rec if issubclass(w.category, EdgecWarning)]) == 1
    x = np.arange(24, dtype=np.float32).reshape(2, 12)
    np.testing.assert_array_equal(edgec.load(tmp_path / "b").run({"x": x})["y"], x.reshape(2, 4, 3))

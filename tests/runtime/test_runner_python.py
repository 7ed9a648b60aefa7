"""`edgec.load(bundle)` in-process: `run` and `run_into` give the bundle's outputs, convert
same-kind input dtypes, and refuse wrong inputs and output buffers with a RunError that names
the tensor. (The call overhead is measured by benchmarks/run.py's `runner.run` column.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

import edgec
from edgec.errors import RunError
from tests.helpers import make_model, rand


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Add", ["x", "b"], ["z"])]
    m = make_model(nodes, [("x", T.FLOAT, [2, 8]), ("b", T.FLOAT, [2, 8])],
                   [("y", T.FLOAT, [2, 4]), ("z", T.FLOAT, [2, 8])], {"w": rand(8, 4, seed=1)})
    out = Path(tmp_path_factory.mktemp("runner")) / "b"
    edgec.build(m, out_dir=out)
    r = edgec.load(out)
    r.w = rand(8, 4, seed=1)
    return r


def test_run_and_run_into(runner) -> None:  # noqa: ANN001
    x, b = rand(2, 8, seed=2), rand(2, 8, seed=3)
    got = runner.run({"x": x, "b": b})
    np.testing.assert_allclose(got["y"], x @ runner.w, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["z"], x + b, rtol=1e-6)
    again = runner.run({"x": x, "b": b})
    assert got["y"] is not again["y"] and np.array_equal(got["y"], again["y"])  # copies, not arena views
    outs = {"y": np.full((2, 4), np.nan, np.float32), "z": np.full((2, 8), np.nan, np.float32)}
    runner.run_into({"x": x.astype(np.float64), "b": b}, outs)  # float64 converted in the copy
    np.testing.assert_array_equal(outs["y"], got["y"])
    np.testing.assert_array_equal(outs["z"], got["z"])
    strided = np.asfortranarray(x)  # non-contiguous input: copied correctly
    np.testing.assert_array_equal(runner.run({"x": strided, "b": b})["z"], got["z"])


def test_bad_inputs_and_outputs(runner) -> None:  # noqa: ANN001
    x, b = rand(2, 8, seed=2), rand(2, 8, seed=3)
    with pytest.raises(RunError, match=r"input 'x' has shape \[8\]"):
        runner.run({"x": x[0], "b": b})
    with pytest.raises(RunError, match="missing"):
        runner.run({"x": x})
    with pytest.raises(RunError, match="dtype complex64"):
        runner.run({"x": x.astype(np.complex64), "b": b})
    with pytest.raises(RunError, match="output 'y' needs a writable float32 array of shape"):
        runner.run_into({"x": x, "b": b}, {"y": np.empty((2, 4), np.float64), "z": np.empty((2, 8), np.float32)})
    with pytest.raises(RunError, match="an array for each of"):
        runner.run_into({"x": x, "b": b}, {"y": np.empty((2, 4), np.float32)})

"""Weight range of edgec's quantizer: 7 bits ([-64, 64]) by default on x86-64 without VNNI, where
those layers run on the exact vpmaddubsw kernel, 8 bits ([-127, 127]) elsewhere or when forced."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from edgec.errors import EdgecError
from edgec.quantize import QuantOptions, quantize_model
from edgec.quantize.qdq_writer import default_weight_bits
from edgec.targets.profiles import get_profile, host_profile
from tests.helpers import check_model, make_model, rand


def _float_model():  # noqa: ANN202
    rng = np.random.default_rng(1)
    inits = {"w0": rng.normal(0, 0.3, (16, 3, 3, 3)).astype(np.float32),
             "b0": rng.normal(0, 0.1, 16).astype(np.float32),
             "w1": rng.normal(0, 0.3, (16, 1, 3, 3)).astype(np.float32),
             "w2": rng.normal(0, 0.2, (8, 16, 1, 1)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c0"], ["r0"]),
             helper.make_node("Conv", ["r0", "w1"], ["c1"], pads=[1, 1, 1, 1], group=16),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["y"])]
    return make_model(nodes, [("x", T.FLOAT, [1, 3, 20, 20])], [("y", T.FLOAT, None)], inits)


def _feeds(n: int) -> list[dict[str, np.ndarray]]:
    return [{"x": rand(1, 3, 20, 20, seed=s)} for s in range(n)]


def _weight_range(m) -> int:  # noqa: ANN001
    return max(int(np.abs(numpy_helper.to_array(i).astype(np.int32)).max())
               for i in m.graph.initializer if i.name.endswith("_quantized") and i.data_type == T.INT8)


def test_default_bits_are_full_range() -> None:
    # Accuracy first: 7-bit weights (the fast vpmaddubsw path) are opt-in on every target.
    for name in ("x86_64", "x86_64-avx512", "rpi4", "rpi5"):
        assert default_weight_bits(get_profile(name)) == 8
    assert default_weight_bits() == default_weight_bits(host_profile())


def test_forced_ranges_and_bad_bits() -> None:
    m = _float_model()
    assert _weight_range(quantize_model(m, _feeds(2), QuantOptions(weight_bits=7))) == 64
    assert _weight_range(quantize_model(m, _feeds(2), QuantOptions(weight_bits=8))) == 127
    with pytest.raises(EdgecError, match="weight bits"):
        quantize_model(m, _feeds(2), QuantOptions(weight_bits=6))


def test_7bit_is_exact_on_host() -> None:
    q = quantize_model(_float_model(), _feeds(3), QuantOptions(weight_bits=7))
    assert _weight_range(q) == 64
    check_model(q, _feeds(1)[0], reference=False)

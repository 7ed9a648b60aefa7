"""Tiny models and tool checks for the phone-bundle tests. `.ci/run` installs every tool named
here (lld, clang, llvm, gcc-arm-linux-gnueabi, qemu-user, default-jdk-headless)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper

from tests.helpers import make_model, rand


def tools_missing(*tools: str) -> list[str]:
    """Tools not on PATH (Debian installs some LLVM tools only as tool-NN)."""
    from edgec.errors import ToolchainError
    from edgec.toolchain.lld import find_versioned

    missing = []
    for t in tools:
        try:
            find_versioned(t, t)
        except ToolchainError:
            missing.append(t)
    return missing


def needs(*tools: str) -> pytest.MarkDecorator:
    missing = tools_missing(*tools)
    return pytest.mark.skipif(bool(missing), reason=f"not installed: {', '.join(missing)} (see .ci/run)")


ANDROID_TOOLS = ("ld.lld", "aarch64-linux-gnu-gcc", "arm-linux-gnueabi-gcc", "cc")
IOS_TOOLS = ("clang", "llvm-ar", "llvm-lipo")
QEMU = {"android-arm64": "qemu-aarch64", "android-arm64-dotprod": "qemu-aarch64", "android-armv7": "qemu-arm",
        "android-x86_64": "cc"}


def tanh_model() -> onnx.ModelProto:
    """y = tanh(x * w): one float32 input and output."""
    w = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    return make_model([helper.make_node("Mul", ["x", "w"], ["t"]), helper.make_node("Tanh", ["t"], ["y"])],
                      [("x", T.FLOAT, [4, 6])], [("y", T.FLOAT, [4, 6])], {"w": w})


def multi_model() -> onnx.ModelProto:
    """Two float inputs and an int64 one; a float and an int64 output. int64 division needs a
    64-bit division helper on armv7 (libgcc's __divdi3), linked into the .so."""
    w = rand(3, 5, seed=3)
    seven = np.array(7, np.int64)
    return make_model(
        [helper.make_node("Mul", ["a", "b"], ["ab"]), helper.make_node("Add", ["ab", "w"], ["s0"]),
         helper.make_node("Sigmoid", ["s0"], ["s"]), helper.make_node("Div", ["l", "seven"], ["d"])],
        [("a", T.FLOAT, [3, 5]), ("b", T.FLOAT, [3, 5]), ("l", T.INT64, [4])],
        [("s", T.FLOAT, [3, 5]), ("d", T.INT64, [4])], {"w": w, "seven": seven})


def multi_feeds() -> dict[str, np.ndarray]:
    return {"a": rand(3, 5, seed=1), "b": rand(3, 5, seed=2),
            "l": np.array([0, 13, 7_000_000_000_123, 2**62 + 5], np.int64)}

"""Converter registry: ONNX op type -> function that emits IR nodes for one ONNX node."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

    from edgec.importer.context import ConvertContext

Converter = Callable[["ConvertContext", "onnx.NodeProto"], None]

CONVERTERS: dict[str, Converter] = {}


def converter(*op_types: str) -> Callable[[Converter], Converter]:
    """Register `fn` as the converter for each ONNX op type (default domain)."""

    def register(fn: Converter) -> Converter:
        for op in op_types:
            CONVERTERS[op] = fn
        return fn

    return register


def supported_ops() -> list[str]:
    from edgec.importer import converters  # noqa: F401  (registers everything)

    return sorted(CONVERTERS)

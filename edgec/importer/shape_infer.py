"""ONNX shape inference and the checker for the importer, run in the sandbox (onnx's C++
crashes on some hostile attribute values: edgec/importer/sandbox.py), with the rule for models
whose declared shapes disagree with what their ops compute."""

from __future__ import annotations

import warnings

import onnx
from onnx import shape_inference

from edgec.errors import EdgecWarning, ModelError
from edgec.importer.sandbox import isolated
from edgec.importer.validate import clean_message


def _infer_and_check(model: onnx.ModelProto, check: bool) -> onnx.ModelProto:
    """Run in the sandbox's child (one fork for both passes)."""
    inferred = shape_inference.infer_shapes(model, check_type=True, strict_mode=True,
                                            data_prop=True)
    if check:  # after inference, which fills output shapes that exporters sometimes omit
        try:
            onnx.checker.check_model(inferred)
        except Exception as exc:  # noqa: BLE001
            raise RuntimeError(f"invalid ONNX model: {clean_message(exc)}") from None
    return inferred


def _infer(model: onnx.ModelProto, check: bool = False) -> onnx.ModelProto:
    """ONNX shape inference (and the checker), isolated: onnx's C++ crashes on some hostile
    attribute values (edgec/importer/sandbox.py)."""
    try:
        out = isolated(lambda m: _without_initializers(_infer_and_check(m, check)), model,
                       "ONNX shape inference")
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - onnx raises several error types here
        text = clean_message(exc)
        raise ModelError(text if text.startswith("invalid ONNX model") else
                         f"shape inference failed: {text}") from None
    assert out is not None
    out.graph.initializer.extend(model.graph.initializer)  # inference leaves them as they were
    return out


def _without_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """The child sends back no weights (the parent has them): tens of MB less to pipe and parse
    per round of inference."""
    model.graph.ClearField("initializer")
    return model


class DeclaredShapes:
    """Shape inference with the checker. A model whose declared shapes (graph outputs,
    value_info) disagree with what its ops compute, as some exporters write them, runs in
    onnxruntime with a warning: here too, the declared shapes are dropped and inference trusted,
    with one warning naming the first disagreement. The disagreement may show only after
    folding (a Reshape whose target was computed): every round of inference goes through here."""

    def __init__(self) -> None:
        self.warned = False

    def infer(self, model: onnx.ModelProto) -> onnx.ModelProto:
        if not self.warned:
            try:
                return _infer(model, check=True)
            except ModelError as exc:
                if "existing shape differ" not in str(exc):
                    raise
                first = exc
        stripped = onnx.ModelProto()
        stripped.CopyFrom(model)
        for vi in [*stripped.graph.output, *stripped.graph.value_info]:
            if vi.type.HasField("tensor_type"):
                vi.type.tensor_type.ClearField("shape")
        out = _infer(stripped, check=True)  # once they disagreed, later rounds go straight here
        if not self.warned:
            self.warned = True
            warnings.warn(EdgecWarning(f"the model's declared shapes disagree with its ops "
                                       f"({clean_message(first, 160)}); using the inferred ones"), stacklevel=3)
        return out

"""`.tflite` models in: read the flatbuffer (reader.py), convert subgraph 0 to an ONNX model that
keeps the NHWC inputs and outputs (convert.py, spatial.py, tensor_ops.py), then the ONNX
importer as usual. docs/tflite.md lists the ops and the models checked against LiteRT."""

from __future__ import annotations

import onnx

from edgec.importer.tflite.convert import to_onnx
from edgec.importer.tflite.reader import is_tflite, read_tflite
from edgec.importer.tflite.spatial import SPATIAL
from edgec.importer.tflite.tensor_ops import TENSOR_OPS

CONVERTERS = {**SPATIAL, **TENSOR_OPS}
SOURCE_FORMAT_KEY = "edgec.source_format"

__all__ = ["CONVERTERS", "is_tflite", "tflite_to_onnx"]


def tflite_to_onnx(buf: bytes, what: str = "the model") -> onnx.ModelProto:
    model = to_onnx(read_tflite(buf, what), CONVERTERS)
    model.metadata_props.add(key=SOURCE_FORMAT_KEY, value="tflite")
    return model

"""ONNX -> IR. (Named `importer` because `import` is a Python keyword.)"""

from edgec.importer.onnx_import import import_model, load_onnx

__all__ = ["import_model", "load_onnx"]

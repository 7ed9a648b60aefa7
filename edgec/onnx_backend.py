"""`onnx.backend.base.Backend` for edgec, so ONNX's own backend test suite runs against us.

`prepare` compiles the model for the host into a temporary bundle and loads it through ctypes:
the same path as `edgec build` + `edgec.load`, no other inference engine.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep

import edgec


class EdgecRep(BackendRep):
    def __init__(self, model: onnx.ModelProto, device: str = "host", **build_kw: Any):
        self._dir = Path(tempfile.mkdtemp(prefix="edgec-backend-"))
        try:
            bundle = edgec.build(model, device=device, out_dir=self._dir / "bundle", **build_kw)
            self.runner = edgec.load(bundle.path)
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self.inputs = [t["name"] for t in bundle.manifest["inputs"]]
        self.outputs = [t["name"] for t in bundle.manifest["outputs"]]

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        if isinstance(inputs, dict):
            feeds = dict(inputs)
        else:
            if isinstance(inputs, np.ndarray):
                inputs = [inputs]
            feeds = dict(zip(self.inputs, inputs))
        res = self.runner.run(feeds)
        return tuple(res[name] for name in self.outputs)

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "_dir", ""), ignore_errors=True)


class EdgecBackend(Backend):
    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        return device == "CPU"

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> EdgecRep:
        super().prepare(model, device, **kwargs)
        return EdgecRep(model, "host")

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"


prepare = EdgecBackend.prepare
run_model = EdgecBackend.run_model
supports_device = EdgecBackend.supports_device

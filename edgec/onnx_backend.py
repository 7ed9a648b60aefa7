"""`onnx.backend.base.Backend` for edgec, so ONNX's own backend test suite runs against us.

`prepare` compiles the model for the host into a temporary bundle and loads it through ctypes:
the same path as `edgec build` + `edgec.load`, no other inference engine.

edgec is an ahead-of-time compiler and specialises: a graph input that decides output shapes
(Reshape's shape, Slice's starts, Reduce axes, ...; edgec/importer/bind.py) is bound to the
values of the first `run` that feeds it, like `edgec build --bind`, and each distinct set of
such values gets its own build (cached for the life of the rep). Such a model is built at its
first `run`, not at `prepare`.
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
from edgec.importer.bind import shape_operand_inputs


class EdgecRep(BackendRep):
    def __init__(self, model: onnx.ModelProto, device: str = "host", **build_kw: Any):
        self.model, self.device, self.build_kw = model, device, build_kw
        inits = {i.name for i in model.graph.initializer}
        self.inputs = [i.name for i in model.graph.input if i.name not in inits]
        self.shape_inputs = sorted(shape_operand_inputs(model))
        self._dir = Path(tempfile.mkdtemp(prefix="edgec-backend-"))
        self._builds: dict[tuple, tuple[Any, list[str]]] = {}
        if not self.shape_inputs:
            self._build({})

    def _build(self, bound: dict[str, np.ndarray]) -> tuple[Any, list[str]]:
        key = tuple((k, v.dtype.str, v.shape, v.tobytes()) for k, v in sorted(bound.items()))
        if key not in self._builds:
            out = self._dir / f"bundle{len(self._builds)}"
            try:
                bundle = edgec.build(self.model, device=self.device, out_dir=out, bind=bound or None,
                                     **self.build_kw)
            except BaseException:
                if not self._builds:
                    shutil.rmtree(self._dir, ignore_errors=True)
                raise
            self._builds[key] = (edgec.load(bundle.path), [t["name"] for t in bundle.manifest["outputs"]])
        return self._builds[key]

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        if isinstance(inputs, dict):
            feeds = dict(inputs)
        else:
            if isinstance(inputs, np.ndarray):
                inputs = [inputs]
            feeds = dict(zip(self.inputs, inputs))
        bound = {k: np.asarray(feeds.pop(k)) for k in self.shape_inputs if k in feeds}
        runner, outputs = self._build(bound)
        res = runner.run(feeds)
        return tuple(res[name] for name in outputs)

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

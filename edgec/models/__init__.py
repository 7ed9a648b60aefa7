"""Model generators: realistic network topologies with seeded random weights (ONNX opset 17).

Used by the whole-model tests, the bundled example model and the benchmarks. Each generator
returns an `onnx.ModelProto` with one input named "input" (batch 1) and one output "output".
"""

from __future__ import annotations

from collections.abc import Callable

import onnx

from edgec.models.builder import GraphBuilder
from edgec.models.mobilenet_v2 import mobilenet_v2
from edgec.models.resnet import resnet18
from edgec.models.sampling_net import sampling_net
from edgec.models.unet import unet

MODELS: dict[str, Callable[..., onnx.ModelProto]] = {
    "mobilenet_v2": mobilenet_v2,
    "resnet18": resnet18,
    "sampling_net": sampling_net,
    "unet": unet,
}

__all__ = ["MODELS", "GraphBuilder", "mobilenet_v2", "resnet18", "sampling_net", "unet"]

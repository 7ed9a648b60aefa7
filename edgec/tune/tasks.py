"""Tasks: the unique (kernel template, shapes, dtype, target) of a model after the target
passes (ConvDirect and Gemv nodes carry their task key in `attrs["task"]`), with the default
schedule as knobs, FLOPs, and the one-kernel ONNX model the tuner measures."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgec.errors import EdgecError
from edgec.ir.graph import Node
from edgec.kernels.conv_direct import tuning as conv_tuning
from edgec.kernels.conv_direct.spec import DIRECT_CONV_OPS
from edgec.kernels.gemv import tuning as gemv_tuning
from edgec.options import BuildOptions
from edgec.targets import get_profile
from edgec.tune.space import ConfigSpace


@dataclass
class Task:
    task: dict  # {"kernel", "shapes", "dtype", "target", "options"}
    key: str
    default_knobs: dict
    flops: int
    count: int = 1  # nodes of the model that share this task
    names: list[str] = field(default_factory=list)

    @property
    def kernel(self) -> str:
        return self.task["kernel"]

    def describe(self) -> str:
        if self.kernel == "gemv":
            s = gemv_tuning.GemvTaskShapes.of(self.task)
            return f"gemv {s.k}x{s.n}"
        c = conv_tuning.ConvTaskShapes.of(self.task)
        g = f" g{c.group}" if c.group > 1 else ""
        return f"conv {c.w[2]}x{c.w[3]}/{c.strides[0]} {c.x[1]}->{c.w[0]} @{c.x[2]}x{c.x[3]}{g}"

    def space(self) -> ConfigSpace:
        return space_for(self.task)


def space_for(task: dict) -> ConfigSpace:
    """The task's knobs on its target: only register tiles that fit its vector registers."""
    profile = get_profile(task["target"])
    lanes, _ = target_info(task)
    if task["kernel"] == "gemv":
        s = gemv_tuning.GemvTaskShapes.of(task)
        return gemv_tuning.gemv_space(s.k, s.n, lanes, profile)
    if task["kernel"] == "conv2d":
        c = conv_tuning.ConvTaskShapes.of(task)
        return conv_tuning.conv_space(c.w[0], c.group, lanes, profile)
    raise EdgecError(f"no config space for kernel template {task['kernel']!r}")


def _default_knobs(n: Node) -> dict:
    tuning = gemv_tuning if n.op == "Gemv" else conv_tuning
    return tuning.knobs_from_schedule(n.attrs["schedule"])


def task_flops(task: dict) -> int:
    if task["kernel"] == "gemv":
        s = gemv_tuning.GemvTaskShapes.of(task)
        return 2 * s.k * s.n
    c = conv_tuning.ConvTaskShapes.of(task)
    (n, _, h, w), (m, cg, kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw) = c.x, c.w, c.strides, c.pads, c.dilations
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    return 2 * n * m * oh * ow * cg * kh * kw


def extract_tasks(model: onnx.ModelProto | str | os.PathLike, device: str = "host",
                  input_shapes: dict[str, list[int]] | None = None,
                  options: BuildOptions | None = None) -> list[Task]:
    """Tunable tasks of `model` for the device profile and build options, the most FLOPs first."""
    from edgec.importer import import_model, load_onnx
    from edgec.pipeline import run_pipeline, target_passes

    profile = get_profile(device)
    g = run_pipeline(import_model(load_onnx(model), input_shapes))
    g = run_pipeline(g.copy(), target_passes(profile, options))
    tasks: dict[str, Task] = {}
    for n in g.nodes:
        key = n.attrs.get("task")
        if key is None or n.op not in (*DIRECT_CONV_OPS, "Gemv"):
            continue
        if key in tasks:
            tasks[key].count += 1
            tasks[key].names.append(n.name)
            continue
        t = json.loads(key)
        tasks[key] = Task(t, key, _default_knobs(n), task_flops(t), 1, [n.name])
    return sorted(tasks.values(), key=lambda t: (-t.flops * t.count, t.key))


def target_info(task: dict) -> tuple[int, int]:
    """(lanes of the task's dtype, vector registers) of its target: fp16 tasks have twice fp32's lanes."""
    p = get_profile(task["target"])
    return p.lanes(np.dtype(task["dtype"]).itemsize), p.vector_registers


# -- the one-kernel model a task is measured with ---------------------------------------------------
def task_model(task: dict, seed: int = 0) -> onnx.ModelProto:
    """One Conv (+bias) or MatMul + Add(bias) with the task's shapes and seeded weights."""
    rng = np.random.default_rng(seed)
    s = task["shapes"]
    fp16 = task["dtype"] == "float16" and task.get("options", {}).get("compute") == "fp16"
    if task["dtype"] != "float32" and not fp16:  # fp16 tasks: an fp32 model built with --precision fp16
        raise EdgecError(f"cannot measure dtype {task['dtype']}")
    if task["kernel"] == "gemv":
        k, n = s[1]
        w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
        b = rng.uniform(-0.1, 0.1, n).astype(np.float32)
        nodes = [helper.make_node("MatMul", ["input", "w"], ["mm"]), helper.make_node("Add", ["mm", "b"], ["output"])]
        x_shape, y_shape = [1, k], [1, n]
    elif task["kernel"] == "conv2d":
        x_shape, wshape, strides, pads, dil, group = conv_tuning.ConvTaskShapes.of(task)
        fan = wshape[1] * wshape[2] * wshape[3]
        w = (rng.standard_normal(wshape) / np.sqrt(fan)).astype(np.float32)
        b = rng.uniform(-0.1, 0.1, wshape[0]).astype(np.float32)
        nodes = [helper.make_node("Conv", ["input", "w", "b"], ["output"], kernel_shape=wshape[2:],
                                  strides=strides, pads=[pads[0], pads[1], pads[2], pads[3]],
                                  dilations=dil, group=group)]
        y_shape = None
    else:
        raise EdgecError(f"cannot measure kernel template {task['kernel']!r}")
    graph = helper.make_graph(nodes, f"task_{task['kernel']}",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, y_shape)],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edgec-tune")


def reference_output(task: dict, x: np.ndarray, seed: int = 0) -> np.ndarray:
    """The task model's output computed in float64 with numpy (checks wrong answers)."""
    model = task_model(task, seed)
    init = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    x = x.astype(np.float64)
    if task["kernel"] == "gemv":
        return x @ init["w"] + init["b"]
    _, _, (sh, sw), (pt, pl, pb, pr), (dh, dw), (group,) = task["shapes"][:6]
    w, b = init["w"], init["b"]
    m, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    n, _, h, wd = xp.shape
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (wd - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, m, oh, ow))
    mg = m // group
    for g in range(group):
        xg, wg = xp[:, g * cg:(g + 1) * cg], w[g * mg:(g + 1) * mg]
        for i in range(kh):
            for j in range(kw):
                patch = xg[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
                y[:, g * mg:(g + 1) * mg] += np.einsum("nchw,mc->nmhw", patch, wg[:, :, i, j])
    return y + b.reshape(1, -1, 1, 1)

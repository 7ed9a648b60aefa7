"""Task identity shared by the target passes (which look up tuned schedules) and the tuner:
a task is (kernel template, shapes, dtype, target), keyed by its canonical JSON text."""

from __future__ import annotations

import json

# Schedule overrides: task key -> knobs (from a tuning log, or one config being measured).
Overrides = dict[str, dict]


def make_task(kernel: str, shapes: list[list[int]], dtype: str, target: str) -> dict:
    return {"kernel": kernel, "shapes": [[int(d) for d in s] for s in shapes], "dtype": dtype,
            "target": target}


def task_key(task: dict) -> str:
    return json.dumps({k: task[k] for k in ("kernel", "shapes", "dtype", "target")}, sort_keys=True,
                      separators=(",", ":"))


def gemv_task(k: int, n: int, target: str) -> dict:
    return make_task("gemv", [[1, k], [k, n]], "float32", target)


def conv_task(x_shape: tuple[int, ...], w_shape: tuple[int, ...], strides: list[int], pads: list[int],
              dilations: list[int], group: int, target: str) -> dict:
    """Shapes: input, weights, then strides, pads (t, l, b, r), dilations and [group]."""
    return make_task("conv2d", [list(x_shape), list(w_shape), list(strides), list(pads), list(dilations),
                                [group]], "float32", target)

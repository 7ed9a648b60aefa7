"""Task identity shared by the target passes (which look up tuned schedules) and the tuner:
a task is (kernel template, shapes, dtype, target, build options), keyed by its canonical JSON
text. The options are the part of `BuildOptions` that changes a kernel's code
(`BuildOptions.task_fields`): a schedule tuned with fp32 weights is not applied to an int8-weight
layer. Records of logs written before options were part of the task have the default options."""

from __future__ import annotations

import json

from edgec.options import BuildOptions

# Schedule overrides: task key -> knobs (from a tuning log, or one config being measured).
Overrides = dict[str, dict]
DEFAULT_TASK_OPTIONS = BuildOptions().task_fields()


def make_task(kernel: str, shapes: list[list[int]], dtype: str, target: str,
              options: BuildOptions | None = None) -> dict:
    return {"kernel": kernel, "shapes": [[int(d) for d in s] for s in shapes], "dtype": dtype,
            "target": target, "options": (options or BuildOptions()).task_fields()}


def task_fields(task: dict) -> dict:
    """The identity fields of a task (a record's task, or one made here)."""
    return {"kernel": task["kernel"], "shapes": task["shapes"], "dtype": task["dtype"],
            "target": task["target"], "options": task.get("options", DEFAULT_TASK_OPTIONS)}


def task_key(task: dict) -> str:
    return json.dumps(task_fields(task), sort_keys=True, separators=(",", ":"))


def task_options(task: dict) -> BuildOptions:
    """The build options a task's kernel is measured with (those not in the key: defaults)."""
    o = task.get("options", DEFAULT_TASK_OPTIONS)
    return BuildOptions(fast_math=bool(o["fast_math"]), weights=o["weights"], precision=o["precision"],
                        compute=o.get("compute", "fp32"))

"""The GEMV family's contract: `Gemv`, a batch-1 x[1, K] @ W[K, N] with W packed in column
blocks of NV vectors (edgec/kernels/gemv/pack.py), lowered by lower.py, tuned through the "gemv"
task (edgec/kernels/gemv/tuning.py)."""

from typing import Literal, NotRequired, TypedDict

from edgec.kernels.spec import Activation, kernel_spec


class GemvScheduleAttr(TypedDict):
    nv: int  # vectors of output columns per block (the packed block width / lanes)
    ku: int  # K unroll
    ka: int  # accumulator sets (divides ku)
    lanes: int


@kernel_spec("Gemv", parallel=True)
class GemvAttrs(TypedDict):
    k: int
    n: int
    schedule: GemvScheduleAttr
    task: NotRequired[str]
    activation: NotRequired[Activation | None]
    weights: NotRequired[Literal["fp32", "fp16", "int8"]]  # stored weight format (--weights)
    exact: NotRequired[bool]  # integer arithmetic in float (edgec/optimize/integer_float.py): no weight compression

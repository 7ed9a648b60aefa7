"""The options of one build, as one frozen value passed explicitly: `edgec.build` makes a
`BuildOptions`, the pipeline chooses its passes from it, the passes and the kernel context
read it, the tuner puts its kernel-relevant part into every task key and the manifest records
it. Nothing here is global or ambient: two builds in one process cannot see each other's
options (they used to be context variables, and a tuning log made with fp32 weights was
applied to an `--weights int8` layer because task keys did not see them)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from edgec.errors import EdgecError

SPARSITY_MODES = ("auto", "off", "code", "bsr")
WEIGHT_FORMATS = ("fp32", "int8", "fp16")
PRECISIONS = (None, "int8", "fp16")  # `--quantize`: None = as the model is
COMPUTE = ("fp32", "fp16")  # `--precision`: the arithmetic of the float kernels


@dataclass(frozen=True)
class SparseOptions:
    """mode: "auto" (the cost rule decides per layer), "off" (always dense), "code" / "bsr"
    (force that format for every eligible layer with at least one zero block).
    threshold: |w| <= threshold counts as zero (0.0: exact zeros only; > 0 changes the results of
    the layers that become sparse; dense layers keep their weights as they are).
    Skipped zero blocks mean an inf/NaN input element no longer turns 0 * x into NaN there.
    code_limit: estimated .text bytes above which a weights-in-code layer falls back to BSR."""

    mode: str = "auto"
    threshold: float = 0.0
    code_limit: int = 64 * 1024

    def __post_init__(self) -> None:
        if self.mode not in SPARSITY_MODES:
            raise EdgecError(f"--sparsity {self.mode!r}: expected one of {', '.join(SPARSITY_MODES)}")
        if not self.threshold >= 0.0 or math.isinf(self.threshold):  # also rejects NaN
            raise EdgecError(f"--sparse-threshold {self.threshold}: must be finite and >= 0")
        if self.code_limit < 0:
            raise EdgecError(f"--sparse-code-limit {self.code_limit}: must be >= 0 bytes")

    def to_attr(self) -> dict:
        return {"mode": self.mode, "threshold": self.threshold, "code_limit": self.code_limit}


@dataclass(frozen=True)
class BuildOptions:
    """fast_math: reassociation/contraction and the fast tanh in the math helpers
    (edgec/codegen/mathfn.py). sparse: the sparsity pass. weights: weight-only compression of
    batch-1 dense/RNN layers (edgec/optimize/weight_quant.py). precision: `--quantize`
    (int8 is applied to the model before import; fp16 stores packed weights as float16).
    compute: `--precision`, the arithmetic of the float kernels: fp32, or fp16 on targets with
    ARMv8.2 half-precision arithmetic (edgec/optimize/fp16_compute.py; docs/fp16.md).
    threads: the thread-pool width the kernels are split for. profile: a timer around every
    kernel call writing a per-kernel table in the arena (docs/profiling.md); no kernel's code
    changes, only the graph function's."""

    fast_math: bool = True
    sparse: SparseOptions = field(default_factory=SparseOptions)
    weights: str = "fp32"
    precision: str | None = None
    compute: str = "fp32"
    threads: int = 1
    profile: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.fast_math, bool):
            raise EdgecError("--fast-math must be on or off")
        if self.weights not in WEIGHT_FORMATS:
            raise EdgecError(f"--weights {self.weights!r}: expected one of {', '.join(WEIGHT_FORMATS)}")
        if self.precision not in PRECISIONS:
            raise EdgecError(f"--quantize {self.precision!r}: expected int8 or fp16")
        if self.precision is not None and self.weights != "fp32":
            raise EdgecError("--weights and --quantize exclude each other: choose one")
        if self.compute not in COMPUTE:
            raise EdgecError(f"--precision {self.compute!r}: expected fp32 or fp16")
        if self.compute == "fp16" and (self.precision is not None or self.weights != "fp32"):
            raise EdgecError("--precision fp16 excludes --quantize and --weights (its weights are fp16 already)")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int):
            raise EdgecError(f"threads must be an integer, not {type(self.threads).__name__}")
        if not 1 <= self.threads <= 16:
            raise EdgecError("--threads must be between 1 and 16")
        if not isinstance(self.profile, bool):
            raise EdgecError(f"profile must be True or False, not {type(self.profile).__name__}")

    @classmethod
    def from_flags(cls, fast_math: str | bool = True, sparsity: str = "auto",
                   sparse_threshold: float = 0.0, sparse_code_limit: int = 64 * 1024,
                   weights: str | None = "fp32", quantize: str | None = None,
                   threads: int = 1, profile: bool = False, precision: str = "fp32") -> BuildOptions:
        """From the values of `edgec build`'s flags / `edgec.build`'s keywords, checked."""
        for flag, v, kinds in (("--sparsity", sparsity, (str,)), ("--weights", weights, (str, type(None))),
                               ("--sparse-threshold", sparse_threshold, (int, float)),
                               ("--sparse-code-limit", sparse_code_limit, (int,)),
                               ("--quantize", quantize, (str, type(None))), ("--precision", precision, (str,))):
            if isinstance(v, bool) or not isinstance(v, kinds):
                raise EdgecError(f"{flag}: {v!r} has the wrong type")
        if not (0.0 <= float(sparse_threshold) < float("inf")) or sparse_code_limit < 0:
            raise EdgecError("--sparse-threshold and --sparse-code-limit must be finite and non-negative")
        if quantize not in (None, "none", "int8", "fp16"):
            raise EdgecError(f"--quantize {quantize!r}: expected int8 or fp16")
        return cls(fast_math=parse_on_off(fast_math, "--fast-math"),
                   sparse=SparseOptions(sparsity, float(sparse_threshold), int(sparse_code_limit)),
                   weights=(weights or "fp32").lower(), precision=None if quantize == "none" else quantize,
                   compute=precision.lower(), threads=threads, profile=profile)

    def manifest(self) -> dict:
        """The options as the manifest records them (`build_options`, beside input_shapes)."""
        out: dict = {"threads": self.threads, "fast_math": self.fast_math, "sparsity": self.sparse.to_attr()}
        if self.weights != "fp32":
            out["weights"] = self.weights
        if self.precision is not None:
            out["quantize"] = self.precision
        if self.compute != "fp32":
            out["precision"] = self.compute
        if self.profile:  # only when set: a build without --profile keeps its manifest bytes
            out["profile"] = True
        return out

    def task_fields(self) -> dict:
        """What of these options changes a tuned kernel's code: part of every tuning task key.
        Threads are not (a task is one kernel call); sparsity decides which layers are dense,
        not how a dense one runs; profiling times the calls, it changes no kernel."""
        fields = {"fast_math": self.fast_math, "weights": self.weights, "precision": self.precision}
        return {**fields, "compute": self.compute} if self.compute != "fp32" else fields  # old keys stay


def parse_on_off(value: str | bool, flag: str) -> bool:
    if isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise EdgecError(f"{flag} must be on or off, not {type(value).__name__}")
    if value.lower() in ("on", "true", "1", "yes"):
        return True
    if value.lower() in ("off", "false", "0", "no"):
        return False
    raise EdgecError(f"{flag} {value!r}: expected on or off")


def check_compute(options: BuildOptions, profiles: list) -> None:  # list[TargetProfile]
    """`--precision fp16` needs a target with fp16 arithmetic (ARMv8.2 fullfp16); a phone bundle
    needs one such slice (the others compute in fp32)."""
    if options.compute == "fp16" and not any(p.fp16_arith for p in profiles):
        raise EdgecError(f"--precision fp16: {', '.join(p.name for p in profiles)} has no half-precision "
                         "arithmetic (ARMv8.2 fullfp16: rpi5, android-arm64-dotprod); --quantize fp16 "
                         "stores fp16 weights and computes in fp32 on any device")

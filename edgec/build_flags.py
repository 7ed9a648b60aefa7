"""Code-generation flags of one `edgec.build` call (`--fast-math`, `--sparsity`,
`--sparse-threshold`, `--sparse-code-limit`, `--weights`), made visible to the target passes and the math
emitters for the duration of the build (context variables: nothing leaks into the next build)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from edgec.codegen.mathfn import fast_math
from edgec.optimize.weight_quant import weight_format
from edgec.sparsity.options import SparseOptions, sparse_options


def parse_on_off(value: str | bool, flag: str) -> bool:
    from edgec.errors import EdgecError

    if isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise EdgecError(f"{flag} must be on or off, not {type(value).__name__}")
    if value.lower() in ("on", "true", "1", "yes"):
        return True
    if value.lower() in ("off", "false", "0", "no"):
        return False
    raise EdgecError(f"{flag} {value!r}: expected on or off")


@contextmanager
def build_flags(fast: str | bool = True, sparsity: str = "auto", sparse_threshold: float = 0.0,
                sparse_code_limit: int = 64 * 1024, weights: str = "fp32") -> Iterator[dict]:
    """Validate the flags and apply them inside the `with` block; yields them for the manifest."""
    from edgec.errors import EdgecError

    on = parse_on_off(fast, "--fast-math")
    for flag, v, kinds in (("--sparsity", sparsity, (str,)), ("--weights", weights, (str,)),
                           ("--sparse-threshold", sparse_threshold, (int, float)),
                           ("--sparse-code-limit", sparse_code_limit, (int,))):
        if isinstance(v, bool) or not isinstance(v, kinds):
            raise EdgecError(f"{flag}: {v!r} has the wrong type")
    if not (0.0 <= float(sparse_threshold) < float("inf")) or sparse_code_limit < 0:
        raise EdgecError("--sparse-threshold and --sparse-code-limit must be finite and non-negative")
    opts = SparseOptions(sparsity, float(sparse_threshold), int(sparse_code_limit))
    with fast_math(on), sparse_options(opts), weight_format(weights) as wfmt:
        yield {"fast_math": on, "sparsity": opts.to_attr(), **({"weights": wfmt} if wfmt != "fp32" else {})}

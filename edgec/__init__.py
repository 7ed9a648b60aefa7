"""edgec: ahead-of-time compiler and bundler for ONNX models on edge devices.

Public entry points raise only `edgec.errors.EdgecError` subclasses (edgec/errors.py)."""

from edgec.errors import public_api
from edgec.version import __version__  # noqa: E402,F401  (re-exported)


@public_api
def build(*args, **kwargs):  # noqa: ANN002, ANN003 - mirrors edgec.compiler.build
    import inspect

    from edgec.compiler import build as _build
    from edgec.errors import EdgecError

    try:
        inspect.signature(_build).bind(*args, **kwargs)
    except TypeError as exc:
        raise EdgecError(f"edgec.build: {exc}") from None
    return _build(*args, **kwargs)


@public_api
def load(bundle_dir, **kwargs):  # noqa: ANN001, ANN003
    import inspect

    from edgec.errors import EdgecError
    from edgec.runner import load as _load

    try:
        inspect.signature(_load).bind(bundle_dir, **kwargs)
    except TypeError as exc:
        raise EdgecError(f"edgec.load: {exc}") from None
    return _load(bundle_dir, **kwargs)


__all__ = ["__version__", "build", "load"]

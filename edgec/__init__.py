"""edgec: ahead-of-time compiler and bundler for ONNX models on edge devices."""

__version__ = "0.1.0"


def build(*args, **kwargs):  # noqa: ANN002, ANN003 - mirrors edgec.compiler.build
    from edgec.compiler import build as _build

    return _build(*args, **kwargs)


def load(bundle_dir, **kwargs):  # noqa: ANN001, ANN003
    from edgec.runner import load as _load

    return _load(bundle_dir, **kwargs)


__all__ = ["__version__", "build", "load"]

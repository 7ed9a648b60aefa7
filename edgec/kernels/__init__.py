"""Kernel families. Each package owns one family's contract and everything that depends on it:
`spec.py` (the typed attrs of its internal ops, checked after every pass; edgec/kernels/spec.py),
the build-time packing pass (`pack.py`/`prepare.py`), the lowerings (`lower*.py`) and, for tuned
kernels, the tuning space and task shapes (`tuning.py`). `generic/` holds the lowerings of the
ONNX ops that need no packing (elementwise, reduce, movement, pool, resize, norm).
See docs/architecture.md."""

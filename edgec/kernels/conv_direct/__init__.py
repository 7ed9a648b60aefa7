"""See edgec/kernels/__init__.py and ./spec.py."""

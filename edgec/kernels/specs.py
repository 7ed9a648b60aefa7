"""Every kernel family's attrs spec, loaded: import `check_attrs`/`is_parallel` from here (not
from edgec/kernels/spec.py) so that no spec is missing when a graph is checked."""

from edgec.kernels.conv_direct import spec as _conv_direct  # noqa: F401
from edgec.kernels.depthwise import spec as _depthwise  # noqa: F401
from edgec.kernels.gemv import spec as _gemv  # noqa: F401
from edgec.kernels.generic import spec as _generic  # noqa: F401
from edgec.kernels.int8 import spec as _int8  # noqa: F401
from edgec.kernels.rnn import spec as _rnn  # noqa: F401
from edgec.kernels.sparse import spec as _sparse  # noqa: F401
from edgec.kernels.spec import SPECS, attrs_errors, check_attrs, is_parallel
from edgec.kernels.window_gemm import spec as _window_gemm  # noqa: F401
from edgec.kernels.winograd import spec as _winograd  # noqa: F401

__all__ = ["SPECS", "attrs_errors", "check_attrs", "is_parallel"]

"""Importing this module registers every kernel family's lowerings (and their specs)."""

from edgec.kernels.conv_direct import lower as _conv_direct  # noqa: F401
from edgec.kernels.conv_direct import lower_ocvec as _conv_ocvec  # noqa: F401
from edgec.kernels.depthwise import lower as _depthwise  # noqa: F401
from edgec.kernels.gemv import lower as _gemv  # noqa: F401
from edgec.kernels.generic import (  # noqa: F401
    concat,
    conv,
    conv_transpose,
    elementwise,
    fused_elementwise,
    gather_copy,
    gather_elements,
    matmul,
    normalization,
    pool,
    pool_indices,
    quant,
    reduce,
    resize,
    topk,
)
from edgec.kernels.int8 import (  # noqa: F401
    lower_depthwise,
    lower_direct,
    lower_ocvec,
    lower_qconv,
    lower_qgemm,
    lower_qmatmul,
    lower_quads,
)
from edgec.kernels.rnn import lower as _rnn  # noqa: F401
from edgec.kernels.sparse import lower as _sparse  # noqa: F401
from edgec.kernels.sparse import lower_bsr as _sparse_bsr  # noqa: F401
from edgec.kernels.window_gemm import lower as _window_gemm  # noqa: F401
from edgec.kernels.winograd import lower as _winograd  # noqa: F401

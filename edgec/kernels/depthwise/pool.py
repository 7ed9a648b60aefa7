"""Target pass `prepare-max-pool`: float and uint8/int8 2-D MaxPool runs on the depthwise kernel's loop nest
(MaxPoolDirect: vectorized along output columns, padding inside the kernel, threads over
channels; edgec/kernels/depthwise/lower.py)."""

from __future__ import annotations

import numpy as np

from edgec.ir.graph import Graph, Node
from edgec.targets import TargetProfile

POOL_TYPES = (np.dtype(np.float32), np.dtype(np.uint8), np.dtype(np.int8))


def prepare_max_pool(profile: TargetProfile):  # noqa: ANN201 - a Pass
    def run(g: Graph) -> Graph:
        for k, n in enumerate(g.nodes):
            x = g.values[n.inputs[0]] if n.inputs else None
            if n.op != "MaxPool" or x is None or x.dtype not in POOL_TYPES or len(x.shape) != 4 \
                    or len(n.outputs) != 1:
                continue
            attrs = {key: list(n.attrs[key]) for key in ("kernel", "strides", "dilations", "pads")}
            attrs["schedule"] = {"mr": 1, "nrv": 2, "lanes": profile.lanes(x.dtype.itemsize)}
            g.nodes[k] = Node("MaxPoolDirect", list(n.inputs), list(n.outputs), attrs, n.name)
        return g

    return run

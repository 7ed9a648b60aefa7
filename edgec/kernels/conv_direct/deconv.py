"""Target pass `prepare-deconv`: a ConvTranspose whose kernel equals its stride (no padding,
dilation 1, one group: the 2x2/2 upsampling heads of DB/U-Net-style decoders) paints disjoint
KHxKW output patches, one per input pixel. That is a 1x1 convolution to M*KH*KW channels followed
by a depth-to-space reshuffle, so it runs on the register-blocked ConvDirect kernel with a
shuffled store epilogue (`shuffle` attr) instead of the generic scatter kernel."""

from __future__ import annotations

import numpy as np

from edgec.ir.graph import Graph, Node
from edgec.kernels.conv_direct.pack import pack_weights
from edgec.kernels.conv_direct.tuning import default_schedule
from edgec.targets import TargetProfile

SHUFFLE_WIDTHS = (1, 2, 4)  # KW values the interleaving store handles


def _eligible(g: Graph, n: Node, profile: TargetProfile) -> bool:
    if n.op != "ConvTranspose" or len(g.values[n.inputs[0]].shape) != 4:
        return False
    x, w = g.values[n.inputs[0]], g.values[n.inputs[1]]
    bias = g.values[n.inputs[2]] if len(n.inputs) > 2 and n.inputs[2] else None
    kh, kw = w.shape[2:]
    a = n.attrs
    return (x.dtype.name in profile.float_types() and w.is_const and w.dtype == x.dtype and (bias is None or bias.is_const)
            and int(a["group"]) == 1 and list(a["strides"]) == [kh, kw] and not any(a["pads"])
            and list(a["dilations"]) == [1, 1] and not any(a.get("output_padding", [0, 0]))
            and kw in SHUFFLE_WIDTHS and list(g.values[n.outputs[0]].shape[2:]) == [x.shape[2] * kh, x.shape[3] * kw])


def prepare_deconv(profile: TargetProfile):  # noqa: ANN201 - returns a Pass
    def run(g: Graph) -> Graph:
        for k, n in enumerate(g.nodes):
            if not _eligible(g, n, profile):
                continue
            w = g.values[n.inputs[1]].data  # (C, M, KH, KW)
            c, m, kh, kw = w.shape
            # GEMM row (m, kh, kw) over input channels: a (M*KH*KW, C, 1, 1) conv weight.
            w1 = np.ascontiguousarray(w.transpose(1, 2, 3, 0).reshape(m * kh * kw, c, 1, 1))
            bias_src = g.values[n.inputs[2]].data.reshape(-1) if len(n.inputs) > 2 and n.inputs[2] else None
            bias = None if bias_src is None else np.repeat(bias_src.astype(w.dtype), kh * kw)
            sched = default_schedule(profile, g.values[n.inputs[0]].shape[3], profile.lanes(w.dtype.itemsize))
            mr = max(kw, sched.mr - sched.mr % kw)  # the FW rows of one pixel share a block
            packed, bias_p = pack_weights(w1, bias, mr)
            attrs = {"kernel": [1, 1], "strides": [1, 1], "dilations": [1, 1], "shuffle": [kh, kw],
                     "activation": n.attrs.get("activation"),
                     "schedule": {"mr": mr, "nrv": sched.nrv, "lanes": sched.lanes}}
            g.nodes[k] = Node("ConvDirect", [n.inputs[0], g.add_const(f"{n.inputs[1]}_d2s{mr}", packed),
                                             g.add_const(f"{n.outputs[0]}_bias{mr}", bias_p)],
                              list(n.outputs), attrs, n.name)
        return g

    return run

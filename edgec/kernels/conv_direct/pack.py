"""Target-dependent pass `prepare-direct-conv`: Conv nodes the register-blocked kernel handles
become `ConvDirect` with weights packed in the order its inner loop reads them, and padding
made explicit (a Pad node in front) so the kernel needs no bounds checks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from edgec.ir.graph import Graph, Node, Value
from edgec.kernels.conv_direct.spec import DIRECT_CONV_OPS
from edgec.kernels.conv_direct.tuning import (
    PANEL_MAX_PLANE,
    VARIANT_OPS,
    column_chunk,
    conv_task,
    default_schedule,
    k_block,
    knobs_from_schedule,
    ocvec_schedule,
    schedule_from_knobs,
)
from edgec.optimize.passes import FUSABLE_ACTIVATIONS, zero_pad
from edgec.options import BuildOptions
from edgec.targets import TargetProfile
from edgec.tune.keys import Overrides, task_key


def _is_depthwise(g: Graph, n: Node) -> bool:
    w = g.values[n.inputs[1]]
    return n.attrs.get("group", 1) == w.shape[0] and w.shape[1] == 1 and g.values[n.inputs[0]].shape[1] == w.shape[0]


def _eligible(g: Graph, n: Node, profile: TargetProfile) -> bool:
    """fp32 convs, and fp16 ones (`--precision fp16`) on targets with fp16 arithmetic."""
    if n.op != "Conv":
        return False
    x, w = g.values[n.inputs[0]], g.values[n.inputs[1]]
    bias = g.values[n.inputs[2]] if len(n.inputs) > 2 and n.inputs[2] else None
    return (x.dtype.name in profile.float_types() and len(x.shape) == 4 and w.is_const and w.dtype == x.dtype
            and (bias is None or bias.is_const) and all(s in (1, 2) for s in n.attrs["strides"]))


def pack_panels(g: Graph, nodes: list[Node], x: str, width: int, name: str) -> str:
    """Append a PackPanels node: NCHW `x` as [n][tile][c][width] strips of `width` pixels, the
    layout the channel-vectorized pointwise kernel reads (conv_ocvec.py); returns its name."""
    n, c, h, w = g.values[x].shape
    packed = g.fresh(f"{x}_panels")
    g.values[packed] = Value(packed, g.values[x].dtype, (n, -(-(h * w) // width), c, width))
    nodes.append(Node("PackPanels", [x], [packed], {}, name))
    return packed


def pack_weights(w: np.ndarray, bias_src: np.ndarray | None, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights as [oc_block][ic][kh][kw][block] (output channels zero-padded to a multiple of
    `block`): the order the kernels' reduction reads them. Bias padded the same way."""
    m, c, kh, kw = w.shape
    mpad = -(-m // block) * block
    wfull = np.zeros((mpad, c, kh, kw), w.dtype)
    wfull[:m] = w
    packed = np.ascontiguousarray(wfull.reshape(mpad // block, block, c, kh, kw).transpose(0, 2, 3, 4, 1))
    bias = np.zeros(mpad, w.dtype)
    if bias_src is not None:
        bias[:m] = bias_src
    return packed, bias


def prepare_direct_conv(profile: TargetProfile, overrides: Overrides | None = None,  # noqa: ANN201 - a Pass
                        options: BuildOptions | None = None):
    def run(g: Graph) -> Graph:
        nodes: list[Node] = []
        for n in g.nodes:
            if not _eligible(g, n, profile):
                nodes.append(n)
                continue
            x = n.inputs[0]
            w = g.values[n.inputs[1]].data
            m, c, kh, kw = w.shape
            groups = n.attrs.get("group", 1)
            out_w = g.values[n.outputs[0]].shape[3]
            size = w.dtype.itemsize
            lanes = profile.lanes(size)  # fp16: twice fp32's lanes in the same registers
            sched = default_schedule(profile, out_w, lanes)
            attrs = {"kernel": [kh, kw], "strides": list(n.attrs["strides"]),
                     "dilations": list(n.attrs["dilations"]), "activation": n.attrs.get("activation")}
            bias_src = g.values[n.inputs[2]].data.reshape(-1) if len(n.inputs) > 2 and n.inputs[2] else None
            key = task_key(conv_task(g.values[x].shape, w.shape, attrs["strides"], n.attrs["pads"],
                                     attrs["dilations"], groups, profile.name, options, w.dtype.name))
            if _is_depthwise(g, n):  # pads are handled inside the depthwise kernel
                attrs["pads"] = list(n.attrs["pads"])
                attrs["schedule"] = {"mr": 1, "nrv": 4 if sched.nrv >= 3 else sched.nrv, "lanes": sched.lanes}
                bias = np.zeros(m, w.dtype) if bias_src is None else bias_src.astype(w.dtype)
                nodes.append(Node("DepthwiseDirect", [x, n.inputs[1], g.add_const(f"{n.outputs[0]}_bias", bias)],
                                  list(n.outputs), attrs, n.name))
                continue
            pt, pl, pb, pr = n.attrs["pads"]
            if any((pt, pl, pb, pr)):
                x = zero_pad(g, nodes, x, (pt, pl, pb, pr), n.name)
            if [kh, kw] == [1, 1] and attrs["strides"] == [1, 1]:
                # A pointwise conv is one GEMM over the flattened plane: schedule for H*W columns.
                hw = g.values[n.outputs[0]].shape[2] * out_w
                sched = default_schedule(profile, hw, lanes)
                if groups == 1:
                    sched = replace(sched, kc=k_block(c, sched.nrv * sched.lanes * size),
                                    cw=column_chunk(c, m, hw, sched.nrv * sched.lanes, sched.mr, size))
                attrs["flatten"] = True
            plane = g.values[n.outputs[0]].shape[2] * out_w
            small_pointwise = attrs.get("flatten") and groups == 1 and m >= 2 * lanes and plane <= PANEL_MAX_PLANE
            if small_pointwise or (groups == 1 and not attrs.get("flatten") and m >= lanes
                                   and (out_w < 2 * lanes or attrs["strides"] != [1, 1])):
                # Small maps and strided convs: vectorize across output channels instead of
                # columns (no lanes wasted on short rows, no deinterleaving shuffles).
                attrs["schedule"] = ocvec_schedule(profile, m, plane, bool(small_pointwise), lanes)
                block = attrs["schedule"]["nrv"] * lanes
            else:
                block = sched.mr
                attrs["schedule"] = sched.to_attr()
            if key in (overrides or {}):  # a tuned schedule (edgec.tune) replaces the heuristic
                attrs["schedule"] = schedule_from_knobs(overrides[key], lanes)
                block = attrs["schedule"]["mr"] if "mr" in attrs["schedule"] else \
                    attrs["schedule"]["nrv"] * lanes
            attrs["task"] = key
            if attrs.get("flatten") and "mp" in attrs["schedule"] and groups == 1:
                x = pack_panels(g, nodes, x, attrs["schedule"]["mp"], n.name)
                attrs["panels"] = True
            if groups > 1:
                attrs["group"] = groups
            mg = m // groups
            parts = [pack_weights(w[k * mg:(k + 1) * mg], None if bias_src is None else bias_src[k * mg:(k + 1) * mg], block)
                     for k in range(groups)]
            packed = np.concatenate([p for p, _ in parts]) if groups > 1 else parts[0][0]
            bias = np.concatenate([bb for _, bb in parts]) if groups > 1 else parts[0][1]
            op = VARIANT_OPS[knobs_from_schedule(attrs["schedule"])["variant"]]
            nodes.append(Node(op, [x, g.add_const(f"{n.inputs[1]}_packed{block}", packed),
                                             g.add_const(f"{n.outputs[0]}_bias{block}", bias)],
                              list(n.outputs), attrs, n.name))
        g.nodes = nodes
        return g

    return run


def _sink_before_residual_adds(g: Graph) -> None:
    """A conv whose only consumer is an Add with a value produced *after* the conv (FPN necks:
    lateral 1x1 conv + upsampled top-down path) moves to just after that producer, so the Add can
    fuse into its epilogue. Legal: the conv's inputs all exist before its old position."""
    uses = g.consumers()
    for _ in range(len(g.nodes)):  # every move is strictly forward; bounded anyway
        moved = False
        order = {o: k for k, n in enumerate(g.nodes) for o in n.outputs}
        for k, n in enumerate(g.nodes):
            if n.op not in (*DIRECT_CONV_OPS, "ConvWinograd") or n.outputs[0] in g.outputs:
                continue
            users = uses.get(n.outputs[0], [])
            if len(users) != 1 or users[0].op != "Add" or n.attrs.get("activation") is not None:
                continue
            add = users[0]
            other = add.inputs[1] if add.inputs[0] == n.outputs[0] else add.inputs[0]
            at = order.get(other, -1)
            # Two convs feeding one Add (ResNet downsample blocks): the later one fuses as it is;
            # moving either would only swap them back and forth.
            if at > k and not (g.nodes[at].op in (*DIRECT_CONV_OPS, "ConvWinograd") and uses.get(other) == [add]):
                g.nodes.insert(at, g.nodes.pop(k))  # the pop shifts the producer to at - 1
                moved = True
                break
        if not moved:
            return


def _upsample_source(g: Graph, uses: dict, conv: Node, residual: str, add: Node,
                     rz: Node | None) -> tuple[str, int, Node] | None:
    """(small map, factor) when the residual (produced by `rz`) is a nearest 2x/4x upsampling
    used only by this Add and the conv's row kernel can read the small map directly (FPN
    top-down paths: the Resize's write and re-read of a full-size map disappear)."""
    sched = conv.attrs.get("schedule", {})
    if rz is None or rz.op != "Resize" or uses.get(residual) != [add] or residual in g.outputs \
            or conv.op != "ConvDirect" or conv.attrs.get("group", 1) != 1:
        return None
    a = rz.attrs
    scales = [float(v) for v in a.get("scales") or []]
    if (a.get("mode"), a.get("coordinate_transformation_mode"), a.get("nearest_mode")) != \
            ("nearest", "asymmetric", "floor") or len(scales) != 4 or scales[:2] != [1.0, 1.0]:
        return None
    up = int(scales[2])
    src = g.values[rz.inputs[0]]
    _, _, oh, ow = g.values[residual].shape
    if scales[3] != scales[2] or up not in (2, 4) or sched["lanes"] % up or src.is_const \
            or tuple(src.shape) != (src.shape[0], src.shape[1], oh // up, ow // up) or oh % up or ow % up:
        return None
    return rz.inputs[0], up, rz


def fuse_residual_add(g: Graph) -> Graph:
    """ConvDirect -> Add(other of the same shape) [-> activation]  ==>  one ConvDirect whose
    epilogue adds the residual, then applies the activation (ResNet/MobileNetV2 shortcuts):
    saves a full read and write of the feature map per shortcut."""

    _sink_before_residual_adds(g)
    uses = g.consumers()
    order = {o: k for k, n in enumerate(g.nodes) for o in n.outputs}
    removed: set[int] = set()
    for k, n in enumerate(g.nodes):
        if n.op not in (*DIRECT_CONV_OPS, "ConvWinograd") or n.attrs.get("activation") is not None \
                or len(n.inputs) != 3 or "shuffle" in n.attrs:
            continue
        y = n.outputs[0]
        users = uses.get(y, [])
        if y in g.outputs or len(users) != 1 or users[0].op != "Add":
            continue
        add = users[0]
        other = add.inputs[1] if add.inputs[0] == y else add.inputs[0]
        ov = g.values[other]
        if other == y or ov.is_const or ov.shape != g.values[y].shape or ov.dtype != g.values[y].dtype:
            continue
        up = _upsample_source(g, uses, n, other, add, g.nodes[order[other]] if other in order else None)
        if up is not None and order.get(up[0], -1) < k:  # read the small map, skip the Resize
            removed.add(id(up[2]))
            del g.values[other]
            other = up[0]
            n.attrs["residual_upsample"] = up[1]
            if g.values[y].shape[3] % n.attrs["schedule"]["lanes"]:  # vectors would straddle rows
                n.attrs.pop("flatten", None)
                n.attrs["schedule"] = {k_: v for k_, v in n.attrs["schedule"].items() if k_ != "cw"}
        elif order.get(other, -1) >= k:  # the residual must exist before the conv runs
            continue
        n.inputs.append(other)
        n.attrs["residual"] = True
        n.outputs[0] = add.outputs[0]  # ConvWinograd keeps its scratch as a second output
        removed.add(id(add))
        del g.values[y]
        out = n.outputs[0]
        after = uses.get(out, [])
        if out not in g.outputs and len(after) == 1 and after[0].op in FUSABLE_ACTIVATIONS:
            n.attrs["activation"] = (after[0].op, dict(after[0].attrs))
            n.outputs[0] = after[0].outputs[0]
            removed.add(id(after[0]))
            del g.values[out]
    g.nodes = [n for n in g.nodes if id(n) not in removed]
    return g

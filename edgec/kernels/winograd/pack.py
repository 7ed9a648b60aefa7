"""Target pass `prepare-winograd`: 3x3 stride-1 convolutions with enough channels run as Winograd
F(r x r, 3 x 3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks"): per r x r
output tile, (r+2)^2 multiplies per channel pair instead of 9 r^2 (F(2,3): 2.25x fewer,
F(4,3): 4x fewer). Weights are transformed at build time (U = G g G^T, packed in the order the
kernel's GEMM reads them); the kernel transforms input tiles, runs (r+2)^2 small GEMMs and
transforms the results back (edgec/kernels/winograd/lower.py).

The kernel zero-pads by itself (pads up to 1; larger pads get a Pad node in front). The kernel's scratch (transformed tiles, per thread)
is a second output value the memory planner places in the arena like any temporary.
"""

from __future__ import annotations

import numpy as np

from edgec.ir.graph import Graph, Node, Value
from edgec.kernels.winograd.lower import TRANSFORMS, scratch_per_task
from edgec.optimize.passes import zero_pad
from edgec.targets import TargetProfile

MIN_CHANNELS = 16  # below this the input/output transforms cost more than the multiplies saved


def transform_weights(w: np.ndarray, r: int) -> np.ndarray:
    """U[xi][m][c] = (G w[m, c] G^T) flattened over the alpha x alpha points xi, in float64."""
    g = np.asarray(TRANSFORMS[r][1], np.float64)
    u = np.einsum("ai,mcij,bj->abmc", g, w.astype(np.float64), g)
    a = r + 2
    return u.reshape(a * a, w.shape[0], w.shape[1])


def winograd_conv_reference(x: np.ndarray, w: np.ndarray, r: int) -> np.ndarray:
    """The kernel's algorithm in numpy (valid conv of an already padded NCHW input, N == 1)."""
    bt, _, at = (np.asarray(t, np.float64) for t in TRANSFORMS[r])
    a = r + 2
    _, c, h, wd = x.shape
    oh, ow = h - 2, wd - 2
    th, tw = -(-oh // r), -(-ow // r)
    xp = np.zeros((c, th * r + 2, tw * r + 2))
    xp[:, :h, :wd] = x[0]
    u = transform_weights(w, r).reshape(a, a, w.shape[0], c)
    y = np.zeros((w.shape[0], th * r, tw * r))
    for i in range(th):
        for j in range(tw):
            d = xp[:, i * r:i * r + a, j * r:j * r + a]
            v = np.einsum("ai,cij,bj->abc", bt, d, bt)
            mm = np.einsum("abmc,abc->abm", u, v)
            y[:, i * r:(i + 1) * r, j * r:(j + 1) * r] = np.einsum("ia,abm,jb->mij", at, mm, at)
    return y[None, :, :oh, :ow]


def choose_tile(out_h: int, out_w: int, lanes: int = 8) -> int:
    """F(4,3) where a tile row fills at least one vector of tiles and the map holds whole 4x4
    tiles without much waste, else F(2,3) (measured on 3x3 convs of ResNet-18 / PP-OCR shapes)."""
    waste4 = (-(-out_h // 4) * 4 * -(-out_w // 4) * 4) / (out_h * out_w)
    return 4 if -(-out_w // 4) >= lanes and waste4 <= 1.15 else 2


def worthwhile(m: int, c: int, out_w: int, r: int, lanes: int) -> bool:
    """Small maps with big weights lose: fewer tiles per row than vector lanes leaves the GEMM
    load-bound on weight broadcasts, and the transformed weights ((r+2)^2/9 times the direct
    ones) stream from memory for every tile row (ResNet-18's 14x14x256 and 7x7x512 convs ran
    1.5-1.7x slower than the direct kernel)."""
    return -(-out_w // r) >= lanes or (r + 2) ** 2 * m * c * 4 <= 1 << 20


def eligible(g: Graph, n: Node, floats: tuple[str, ...] = ("float32",)) -> bool:
    """Convs of the dtypes `floats` (TargetProfile.float_types: fp16 too with fp16 arithmetic)."""
    if n.op != "Conv":
        return False
    x, w = g.values[n.inputs[0]], g.values[n.inputs[1]]
    bias = g.values[n.inputs[2]] if len(n.inputs) > 2 and n.inputs[2] else None
    a = n.attrs
    if a.get("exact"):  # integers that must stay exact (edgec/optimize/integer_float.py)
        return False
    return (x.dtype.name in floats and len(x.shape) == 4 and w.is_const and w.dtype == x.dtype
            and (bias is None or bias.is_const) and tuple(w.shape[2:]) == (3, 3)
            and a.get("group", 1) == 1 and list(a["strides"]) == [1, 1] and list(a["dilations"]) == [1, 1]
            and w.shape[0] >= MIN_CHANNELS and w.shape[1] >= MIN_CHANNELS)


def tile_for(dt: np.dtype, out_h: int, out_w: int, lanes: int, fast_math: bool) -> int:
    """fp16 takes F(4,3) under fast-math only: its transforms (B^T up to 5, A^T up to 8) make
    the products ~100x the output's magnitude, and the fp16 sum over input channels keeps 11
    bits of them: a 96 -> 24 layer's relative RMS error is 1.3% against 0.22% with F(2,3)
    (numpy, docs/fp16.md). The models' outputs did not show it (the PP-OCR det's cosine vs
    fp32 stayed 0.9995; the corpus in docs/fp16.md), so fast-math (on by default) takes the
    speed and `--fast-math off` keeps F(2,3)."""
    if dt == np.float16 and not fast_math:
        return 2
    return choose_tile(out_h, out_w, lanes)


def prepare_winograd(profile: TargetProfile, threads: int = 1, fast_math: bool = True):  # noqa: ANN201 - a Pass
    regs = profile.vector_registers

    def run(g: Graph) -> Graph:
        nodes: list[Node] = []
        for n in g.nodes:
            if not eligible(g, n, profile.float_types()):
                nodes.append(n)
                continue
            x = n.inputs[0]
            w = g.values[n.inputs[1]].data
            dt = w.dtype
            lanes = profile.lanes(dt.itemsize)  # fp16 (`--precision fp16`): 8 halves per q register
            m, c = w.shape[:2]
            _, _, oh, ow = g.values[n.outputs[0]].shape
            r = tile_for(dt, oh, ow, lanes, fast_math)
            if not worthwhile(m, c, ow, r, lanes):
                nodes.append(n)
                continue
            tw = -(-ow // r)
            # 6x2 tiles on 16-register targets measured ~5% faster than 4x3 (less scratch per
            # tile group, fewer passes over it); 32 registers take 4 vectors of tiles.
            nrv = max(1, min(2 if regs == 16 else 4, -(-tw // lanes)))
            mr = max(1, min(8, (regs - nrv - 1) // nrv))
            a2 = (r + 2) ** 2
            mb = -(-m // mr)
            # U packed as [xi][m block][c][mr]: the GEMM broadcasts mr weights per input channel.
            u = np.zeros((a2, mb * mr, c))
            u[:, :m] = transform_weights(w, r)
            packed = np.ascontiguousarray(u.reshape(a2, mb, mr, c).transpose(0, 1, 3, 2)).astype(dt)
            bias = np.zeros(mb * mr, dt)
            if len(n.inputs) > 2 and n.inputs[2]:
                bias[:m] = g.values[n.inputs[2]].data.reshape(-1)
            pads = tuple(n.attrs["pads"])
            if max(pads) > 1:  # the kernel pads by up to 1 itself (see its border analysis)
                x, pads = zero_pad(g, nodes, x, pads, n.name), (0, 0, 0, 0)
            tg = nrv * lanes
            per_task = scratch_per_task(r, tg, c, mr, lanes)
            scratch = g.fresh(f"{n.outputs[0]}_wscratch")
            g.values[scratch] = Value(scratch, dt, (threads * per_task,))
            attrs = {"tile": r, "activation": n.attrs.get("activation"),
                     "schedule": {"mr": mr, "nrv": nrv, "lanes": lanes}, "threads": threads,
                     "pads": list(pads[:2])}
            nodes.append(Node("ConvWinograd", [x, g.add_const(f"{n.inputs[1]}_wino{r}", packed),
                                               g.add_const(f"{n.outputs[0]}_wbias", bias)],
                              [n.outputs[0], scratch], attrs, n.name))
        g.nodes = nodes
        return g

    return run

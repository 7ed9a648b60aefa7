"""The 4-way int8 dot path of `prepare-qconv`: QConvQuads + QConvDirect(dot="u8s8" on x86 AVX2,
"vnni" on x86 with VNNI, "s8s8" on aarch64 with dotprod).

vpmaddubsw multiplies u8 activations by s8 weights and adds adjacent pairs into int16 with
saturation, so the path is taken only when every weight of the layer (minus its zero point)
is in [-64, 64]: then |2 * 255 * 64| < 32768 and the int32 sums are exact. onnxruntime's
`reduce_range=True` models and edgec's own quantizer on x86 without VNNI give such weights;
full-range layers keep the exact int16-pair path (qconv_direct.py). With VNNI, vpdpbusd sums
the four products in int32 (no saturation): every layer whose centered weights fit int8 takes
the quads, at 8 int32 lanes (ymm) even on 512-bit profiles (Zen 4 splits zmm ops in two).

Activations are stored as u8 bytes `x ^ flip` (flip 0x80 for int8 input: x + 128), padded
with the zero point in that encoding (`pad`); the kernel sums pad-free products
sum(byte * w), so the bias becomes bias - pad * sum(w) per output channel (build time; the
weights are constant).
"""

from __future__ import annotations

import numpy as np

from edgec.ir.graph import Graph, Node, Value
from edgec.kernels.int8.requant_x86 import fits_int32
from edgec.kernels.int8.spec import QUADS_CHUNK

WMAX = 64



def fits_7bit(w: np.ndarray) -> bool:
    return w.size > 0 and int(w.min()) >= -WMAX and int(w.max()) <= WMAX


def _pack_channels(w8: np.ndarray, groups: int, mr: int) -> np.ndarray:
    """(M, Cg, KH, KW) int8 -> byte quads [g][ocb][cq][kh][kw][mr][4] as int32 words."""
    m, cg, kh, kw = w8.shape
    mg, cq = m // groups, -(-cg // 4)
    mgp = -(-mg // mr) * mr
    full = np.zeros((groups, mgp, 4 * cq, kh, kw), np.int8)
    full[:, :mg, :cg] = w8.reshape(groups, mg, cg, kh, kw)
    t = full.reshape(groups, mgp // mr, mr, cq, 4, kh, kw).transpose(0, 1, 3, 5, 6, 2, 4)
    return np.ascontiguousarray(t).view(np.int32).reshape(-1)


def _pack_spatial(w8: np.ndarray, groups: int, mr: int) -> np.ndarray:
    """(M, 1, KH, KW<=4) int8 -> kernel-row quads [g][ocb][kh][mr][4] as int32 words."""
    m, _, kh, kw = w8.shape
    mg = m // groups
    mgp = -(-mg // mr) * mr
    full = np.zeros((groups, mgp, kh, 4), np.int8)
    full[:, :mg, :, :kw] = w8.reshape(groups, mg, kh, kw)
    t = full.reshape(groups, mgp // mr, mr, kh, 4).transpose(0, 1, 3, 2, 4)
    return np.ascontiguousarray(t).view(np.int32).reshape(-1)


def _pack_rows(w8: np.ndarray) -> np.ndarray:
    """(C, 1, KH, KW<=8) int8 -> kernel-row quads [c][kh][ceil(KW/4)][4] as int32 words (zero
    padded): QDepthwiseBytes' weights, one or two quads per kernel row."""
    m, _, kh, kw = w8.shape
    nq = -(-kw // 4)
    full = np.zeros((m, kh, 4 * nq), np.int8)
    full[:, :, :kw] = w8[:, 0]
    return np.ascontiguousarray(full).view(np.int32).reshape(-1)


def ocvec_tile(ow: int, regs: int) -> tuple[int, int]:
    """(MR pixels, NRV vectors of 8 output channels) of a QConvOcvec tile. NRV is 2: with one
    weight vector per step every dot needs its own broadcast and 10x1 / 12x1 tiles ran 1.4x
    slower than 5x2 (ResNet-18 64 -> 64 3x3 at 56x56); 2x4 was no faster than 5x2. MR x 2
    accumulators + 2 weight vectors + broadcast, ones and product must fit the registers; the
    row is split into equal tiles (14 = 5 + 5 + 4, 7 = 4 + 3)."""
    nrv = 2
    mr_max = max(1, min(5, (regs - 4) // nrv - 1))
    tiles = -(-ow // mr_max)
    return -(-ow // tiles), nrv


def use_ocvec(groups: int, m: int, attrs: dict, ow: int) -> bool:
    """Strided convs and rows under 32 pixels: pixel vectors there load `stride` vectors and
    permute them per tap, or leave lanes idle (ResNet-18's 3x3 stride-2 convs 1.4-2.0x of
    onnxruntime pixel-vectorized, 0.98-1.04x here). Wide stride-1 rows stay on QConvDirect,
    which was faster there (0.78 vs 0.93 of onnxruntime at 64 -> 64, 56x56)."""
    if groups != 1 or m % 16:
        return False
    if attrs["flatten"]:  # a 49-pixel plane fills 4 x 16 lanes: 23% idle (MobileNetV2's 7x7 1x1s)
        return ow <= 64
    return attrs["strides"][1] > 1 or ow < 32


def _packs_exact(w8: np.ndarray, bias: np.ndarray, mult: np.ndarray) -> bool:
    return fits_int32(np.abs(w8.astype(np.int64)).reshape(w8.shape[0], -1).sum(axis=1), bias, mult)


def quad_nodes(g: Graph, n: Node, w_centered: np.ndarray, b32: np.ndarray, attrs: dict,
               per_oc, regs: int, lanes: int, dot: str = "u8s8") -> list[Node] | None:  # noqa: ANN001
    """QConvQuads + QConvDirect for QConv `n`, or None when the layer is not eligible
    (weights beyond 7 bits, too few channels per group to fill quads, or bias overflow).
    `w_centered` is the int32 weight minus its zero point, `attrs` the QConvDirect attributes
    of the pair path (kernel, strides, pads, flatten, ...), `per_oc(values, mr, dtype)` pads a
    per-output-channel array to the kernel's blocks."""
    x86 = dot in ("u8s8", "vnni")
    # the stored weight bytes are s8: u8 weights minus their zero point may not fit
    fits_s8 = w_centered.size > 0 and w_centered.min() >= -128 and w_centered.max() <= 127
    if lanes != (8 if x86 else 4) or not fits_s8 or (dot == "u8s8" and not fits_7bit(w_centered)):
        return None
    x, xz, y = n.inputs[0], (n.inputs + [""] * 3)[2], n.outputs[0]
    xv = g.values[x]
    m, cg, kh, kw = w_centered.shape
    groups = attrs["group"]
    mg = m // groups
    dh, dw = attrs["dilations"]
    sh, sw = attrs["strides"]
    spatial = cg == 1 and kw <= 4 and not attrs["flatten"]
    # depthwise straight from the bytes: kernel rows of up to 8 taps (two quads; PP-LCNet's 5x5)
    bytes_dw = x86 and cg == 1 and kw <= 8 and not attrs["flatten"] and mg == 1 and dw == 1 and sw in (1, 2)
    if not spatial and not bytes_dw and cg < 3:
        return None
    # stored bytes: u8 for vpmaddubsw (int8 input flips to x + 128), s8 for sdot (uint8 input
    # flips to x - 128); `pad` is the zero point so stored, `pad_value` the number it stands for
    flip = 0x80 if (xv.dtype.name == "int8") == x86 else 0
    zp = int(g.values[xz].data.reshape(-1)[0]) if xz else 0
    pad = ((zp ^ flip) & 0xFF) if flip else zp & 0xFF
    pad_value = pad if x86 or pad < 128 else pad - 256
    sum_w = w_centered.reshape(m, -1).sum(axis=1, dtype=np.int64)
    bias = b32.astype(np.int64) - pad_value * sum_w
    if bias.min() < -(2**31) or bias.max() >= 2**31:
        return None
    _, _, h, wd = xv.shape
    _, _, oh, ow = g.values[y].shape
    pt, pl, pb, pr = attrs["pads"]
    width = oh * ow if attrs["flatten"] else ow
    w8 = w_centered.astype(np.int8)
    qattrs = dict(attrs, dot=dot)
    if bytes_dw:
        packed = _pack_rows(w8)
        battrs = {k: v for k, v in attrs.items() if k not in ("mult", "flatten", "group")}
        return [Node("QDepthwiseBytes", [x, g.add_const(f"{n.inputs[3]}_rows", packed),
                                         g.add_const(f"{y}_bias", bias.astype(np.int32)),
                                         g.add_const(f"{y}_mult", np.ascontiguousarray(attrs["mult"], np.float32)),
                                         (n.inputs + [""] * 8)[7]], [y],
                     dict(battrs, dot=dot, flip=flip, pad=pad, pack_requant=_packs_exact(w8, bias, attrs["mult"])),
                     n.name)]
    if spatial:
        nrv = max(1, min(4, -(-width // lanes)))
        mr = max(1, min(4, (regs - 2 * nrv - 2) // nrv, mg))
        wp = wd + pl + pr
        shape = (groups, h + pt + pb, max(-(-wp // QUADS_CHUNK) * QUADS_CHUNK, wp + lanes * sw))
        packed = _pack_spatial(w8, groups, mr)
        qattrs.update(kernel=[kh, 1], dilations=[dh, 1])
        prep = {"mode": "spatial", "quad_kernel": kw, "quad_dilation": dw, "padded_width": wp}
    else:
        # MR x NRV int32 accumulators + NRV input vectors + the broadcast + the ones vector of
        # vpmaddwd must fit the registers: 4x3 spilled two accumulators every step; 5x2 runs
        # ResNet-18 int8 9% faster (1.28x -> 1.16x of onnxruntime's int8, A/B same run).
        nrv = max(1, min(2, -(-width // lanes)))
        mr = max(1, min(8, (regs - 2 * nrv - 1) // nrv, mg))
        rows, cols = (1, h * wd) if attrs["flatten"] else (h + pt + pb, wd + pl + pr)
        shape = (groups * -(-cg // 4), rows, cols + lanes * sw)
        if x86 and use_ocvec(groups, m, attrs, width):
            mr, nrv = ocvec_tile(width, regs)
            op = "QConvOcvec"
            packed = _pack_channels(w8, 1, nrv * lanes)
            mr_blocks = nrv * lanes
        else:
            op, packed, mr_blocks = "QConvDirect", _pack_channels(w8, groups, mr), mr
        prep = {"mode": "channels"}
    qattrs["schedule"] = {"mr": mr, "nrv": nrv, "lanes": lanes}
    qattrs["pack_requant"] = x86 and _packs_exact(w8, bias, attrs["mult"])
    if spatial:
        op, mr_blocks = "QConvDirect", mr
    prep.update(group=groups, pads=attrs["pads"], flatten=attrs["flatten"], flip=flip, pad=pad)
    xq = g.fresh(f"{x}_quads")
    g.values[xq] = Value(xq, np.dtype(np.int32), shape)
    ys, yz = n.inputs[6], (n.inputs + [""] * 8)[7]
    del ys
    return [Node("QConvQuads", [x], [xq], prep, n.name),
            Node(op, [xq, g.add_const(f"{n.inputs[3]}_quads", packed),
                      g.add_const(f"{y}_bias", per_oc(bias.astype(np.int32), mr_blocks, np.int32)),
                      g.add_const(f"{y}_mult", per_oc(attrs["mult"], mr_blocks, np.float32)), yz],
                 [y], {k: v for k, v in qattrs.items() if k != "mult"}, n.name)]

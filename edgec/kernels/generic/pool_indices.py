"""MaxPoolIndices: MaxPool with its second output, the flat index of each maximum (2-D; 1-D
arrives as H=1), as onnxruntime computes it: taps in row-major window order, the first strictly
greater value wins (NaN never does), the index counts over the whole unpadded input tensor,
((n*C + c)*H + h)*W + w, or with storage_order=1 ((n*C + c)*H*W + h + w*H). Segmentation
decoders (SegNet/ENet-style MaxUnpool) read it. Same clipped-window tables as MaxPool."""

from __future__ import annotations

from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.types import is_float, is_signed
from edgec.kernels.generic.conv import Tables, as_nchw, fill_row
from edgec.kernels.generic.pool import _lowest


@lowering("MaxPoolIndices")
def lower_max_pool_indices(kc: KernelContext) -> None:
    x, (y, ind) = kc.inputs[0], kc.outputs
    _, _, h_, w_ = as_nchw(kc.shape(x))
    n_, c_, oh_, ow_ = as_nchw(kc.shape(y))
    kh_, kw_ = kc.attrs["kernel"]
    sh, sw = kc.attrs["strides"]
    pt, pl, _, _ = kc.attrs["pads"]
    dh, dw = kc.attrs["dilations"]
    column_major = kc.attrs["storage_order"] == 1
    dtype = kc.dtype(x)
    b = kc.b
    t = Tables(kc)
    kh_lo, kh_hi, ow_lo, ow_hi = t.windows((oh_, ow_), (h_, w_), (sh, sw), (pt, pl), (dh, dw), (kh_, kw_))
    if is_float(dtype):
        greater = lambda v, acc: b.fcmp_ordered(">", v, acc)  # noqa: E731
    else:
        greater = lambda v, acc: (b.icmp_signed if is_signed(dtype) else b.icmp_unsigned)(">", v, acc)  # noqa: E731
    i64 = kc.const(kc.dtype(ind), 0).type

    def as_i64(v):  # noqa: ANN001, ANN202
        return b.sext(v, i64) if v.type.width < 64 else v

    with kc.loop(n_ * c_, "p") as p, kc.loop(oh_, "oh") as oh:
        yrow = kc.linear([p, oh], [oh_ * ow_, ow_])
        fill_row(kc, y, yrow, ow_, kc.const(dtype, _lowest(dtype)))
        fill_row(kc, ind, yrow, ow_, kc.const(kc.dtype(ind), -1))
        with kc.loop(t.at(kh_hi, oh), "kh", start=t.at(kh_lo, oh)) as kh:
            ih = kc.linear([oh, kh], [sh, dh], offset=-pt)
            with kc.loop(kw_, "kw") as kw:
                with kc.loop(t.at(ow_hi, kw), "ow", start=t.at(ow_lo, kw)) as ow:
                    iw = kc.linear([ow, kw], [sw, dw], offset=-pl)
                    yi = b.add(yrow, ow)
                    flat = kc.linear([p, ih, iw], [h_ * w_, w_, 1])
                    v, acc = kc.load(x, flat), kc.load(y, yi)
                    win = greater(v, acc)
                    kc.store(y, yi, b.select(win, v, acc))
                    where = kc.linear([p, ih, iw], [h_ * w_, 1, h_]) if column_major else flat
                    kc.store(ind, yi, b.select(win, as_i64(where), kc.load(ind, yi)))

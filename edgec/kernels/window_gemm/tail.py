"""The last `schedule["dot"]` output channels of a `WindowGemm` (fewer than a vector's lanes, see
pack.dot_columns): in a column block they would fill one vector each step with mostly padding
(the 257th STFT bin on 16 lanes cost 1/17 of the FMAs), so each is a dot product along its
window instead: vectors of x[c, t * stride + k ..] times the packed column W[n, c, k ..] (zero
padded to whole vectors per channel), one horizontal sum per output. A tile of R positions x G
columns loads R + G vectors per R x G FMAs. Weights: [dot][channels][taps rounded up to lanes]
after the column blocks; biases after theirs."""

from __future__ import annotations

from llvmlite import ir

from edgec.codegen.activations import apply_activation
from edgec.codegen.kernel import KernelContext
from edgec.codegen.loops import for_range_carried
from edgec.codegen.types import I32
from edgec.codegen.vector import Vec

MAX_COLUMNS = 4  # columns per tile


def hsum(b: ir.IRBuilder, v: ir.Value, lanes: int) -> ir.Value:
    """The sum of the lanes (a power of two): halves added until one is left."""
    und = ir.Constant(v.type, ir.Undefined)
    while lanes > 1:
        lanes //= 2
        lo = b.shuffle_vector(v, und, ir.Constant(ir.VectorType(I32, lanes), list(range(lanes))))
        hi = b.shuffle_vector(v, und, ir.Constant(ir.VectorType(I32, lanes), list(range(lanes, 2 * lanes))))
        v, und = b.fadd(lo, hi), ir.Constant(lo.type, ir.Undefined)
    return b.extract_element(v, ir.Constant(I32, 0))


def dot_tail(kc: KernelContext, w_at: int, b_at: int) -> None:
    """Output channels n - dot .. n - 1 for every batch and position; their weights start at
    element `w_at` of the packed weights, their biases at `b_at`."""
    x, wp, bias = kc.inputs[:3]
    y = kc.outputs[0]
    a = kc.attrs
    batch, ch, width, taps, stride, rows, n_ = (a[k] for k in ("batch", "channels", "width", "taps", "stride",
                                                               "rows", "n"))
    lanes, dot = a["schedule"]["lanes"], a["schedule"]["dot"]
    b, vec, act = kc.b, Vec(kc.b, lanes), a.get("activation")
    kv, kr = divmod(taps, lanes)
    tp = (kv + (1 if kr else 0)) * lanes
    rows_major = a["layout"] == "tn"
    g_max = min(dot, MAX_COLUMNS)
    r_max = max(1, min(8, (kc.target.vector_registers - g_max - 2) // (g_max + 1)))

    def tile(xb: ir.Value, yb: ir.Value, t0: ir.Value, m: int, c0: int, g: int) -> None:
        """Positions t0 .. t0+m-1, tail columns c0 .. c0+g-1."""
        xrow = [b.add(xb, b.mul(b.add(t0, kc.idx(r)), kc.idx(stride))) for r in range(m)]
        with for_range_carried(b, ch, kc.isize, [vec.zeros()] * (m * g), "dc") as cl:
            xc = [b.add(xr, b.mul(cl.index, kc.idx(width))) for xr in xrow]
            wc = [b.add(kc.idx(w_at + (c0 + q) * ch * tp), b.mul(cl.index, kc.idx(tp))) for q in range(g)]

            def step(acc: list[ir.Value], k: ir.Value, partial: bool) -> list[ir.Value]:
                ws = [vec.load(kc.gep(wp, b.add(w, k))) for w in wc]
                acc = list(acc)
                for r in range(m):
                    if partial:  # the window's last kr values (the weights' padding is zero)
                        xs = vec.zeros()
                        for i in range(kr):
                            xs = b.insert_element(xs, kc.load(x, b.add(xc[r], b.add(k, kc.idx(i)))),
                                                  ir.Constant(I32, i))
                    else:
                        xs = vec.load(kc.gep(x, b.add(xc[r], k)))
                    for q in range(g):
                        acc[r * g + q] = vec.fma(xs, ws[q], acc[r * g + q])
                return acc

            with for_range_carried(b, kv, kc.isize, cl.values, "dk") as kl:
                kl.next = step(kl.values, b.mul(kl.index, kc.idx(lanes)), False)
            acc = kl.values
            cl.next = step(acc, kc.idx(kv * lanes), True) if kr else list(acc)
        for r in range(m):
            t = b.add(t0, kc.idx(r))
            for q in range(g):
                col = n_ - dot + c0 + q
                s = b.fadd(hsum(b, cl.values[r * g + q], lanes), kc.load(bias, b_at + c0 + q))
                at = b.add(t, kc.idx(col * rows)) if not rows_major else b.add(b.mul(t, kc.idx(n_)), kc.idx(col))
                kc.store(y, b.add(yb, at), apply_activation(b, s, act))

    tiles, rest = divmod(rows, r_max)
    with kc.loop(batch, "db") as bi:
        xb = b.mul(bi, kc.idx(ch * width))
        yb = b.mul(bi, kc.idx(n_ * rows))
        for c0 in range(0, dot, g_max):
            g = min(g_max, dot - c0)
            if tiles:
                with kc.loop(tiles, "dt") as t:
                    tile(xb, yb, b.mul(t, kc.idx(r_max)), r_max, c0, g)
            if rest:
                tile(xb, yb, kc.idx(tiles * r_max), rest, c0, g)

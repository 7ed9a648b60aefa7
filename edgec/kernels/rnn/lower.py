"""Fused GRU / LSTM / RNN kernels: one kernel per node loops over directions, time steps and
batch rows; no per-gate op dispatch.

Per direction: the input projection Wx + bias for all time steps is hoisted into one GEMM
before the recurrence. Per step and batch row: the recurrent GEMV R h_{t-1} (register tiles of
NV vectors of columns, one broadcast of h[j] feeding NV FMAs, weights streamed from the packed
panels of edgec/kernels/rnn/layout.py), then the cell (edgec/kernels/rnn/cell.py)
vectorized over hidden units, which updates the state and writes Y. GRU with
linear_before_reset = 0 needs r before its h-gate product: z/r columns first, then r * h, then
the h columns. Scratch (an extra output value): [gx: T*B*N][ga: N][h: B*Hp][c: B*Hp][rh: Hp].

sequence_lens (when given at run time): steps t >= len[b] write zeros to Y and leave the state
alone; the reverse direction starts at len[b] - 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from llvmlite import ir

from edgec.codegen.kernel import KernelContext, lowering
from edgec.codegen.loops import for_range_carried
from edgec.codegen.mathfn import FM
from edgec.codegen.types import F32, I32
from edgec.codegen.vector import Vec
from edgec.kernels.generic.quant import dynamic_uint8_params, round_clamp
from edgec.kernels.generic.weight_load import load_weights
from edgec.kernels.rnn import cell
from edgec.kernels.rnn.layout import BSR_BLOCK, BSR_UNROLL
from edgec.kernels.rnn.recurrent_dot import project_from_dots, quantize_state_bytes, recurrent_dot

PROJECT_ROWS = 4  # rows of the input projection per GEMM tile (4 x NV accumulators + NV weights)


class _Rnn:
    def __init__(self, kc: KernelContext):
        a = kc.attrs
        self.kc, self.b, self.op = kc, kc.b, kc.node.op
        self.t, self.bt, self.i = a["seq_length"], a["batch"], a["input_size"]
        self.h, self.hp, self.g, self.d = a["hidden"], a["hidden_padded"], a["gates"], a["directions"]
        self.p, self.n = a["panel"], a["gates"] * a["hidden_padded"]
        self.lanes = kc.target.fp32_lanes
        per_tile = 8 if kc.target.vector_registers == 16 else 16
        self.cw = min(self.p, self.lanes * per_tile)  # register tile: cw columns
        self.vec = Vec(kc.b, self.lanes)
        t, bt, i, h, d = self.t, self.bt, self.i, self.h, self.d
        if a["layout"]:
            self.xs = (i, t * i)                      # x strides (t, b)
            self.ys = (d * h, h, t * d * h)           # Y strides (t, d, b)
            self.ss = (h, d * h)                      # state strides (d, b)
        else:
            self.xs = (bt * i, i)
            self.ys = (d * bt * h, bt * h, h)
            self.ss = (bt * h, h)
        scratch = kc.outputs[-1]
        self.gx = kc.gep(scratch, 0)
        self.ga = kc.gep(scratch, t * bt * self.n)
        self.hs = kc.gep(scratch, t * bt * self.n + self.n)
        self.cs = kc.gep(scratch, t * bt * self.n + self.n + bt * self.hp)
        self.rh = kc.gep(scratch, t * bt * self.n + self.n + 2 * bt * self.hp)

    # ---- helpers ---------------------------------------------------------------------
    def at(self, ptr: ir.Value, off: ir.Value | int) -> ir.Value:
        return self.b.gep(ptr, [off if isinstance(off, ir.Value) else self.kc.idx(off)], inbounds=True)

    def lin(self, *terms: tuple[ir.Value | int, int]) -> ir.Value:
        b, kc = self.b, self.kc
        acc: ir.Value = kc.idx(0)
        for v, s in terms:
            v = kc.idx(v) if isinstance(v, int) else v
            acc = b.add(acc, v if s == 1 else b.mul(v, kc.idx(s)))
        return acc

    def gemv(self, x: ir.Value, k: int, mat: ir.Value, col0: int, col1: int, init: ir.Value,
             out: ir.Value, scale: ir.Value | None = None) -> None:
        """out[col0:col1] = init[col0:col1] + sum_j x[j] * M[j, col] over the packed panels
        (int8 M: init + scale[col] * sum_j x[j] * q[j, col], fp16 M: widened on load)."""
        b, kc, vec, p, cw = self.b, self.kc, self.vec, self.p, self.cw
        ka = 1
        if self.kc.attrs.get("weights") in ("int8", "fp16"):
            # widening costs a register per vector: half the tile, accumulator sets over k
            # (8 independent FMA chains: narrow layers like GRU 16 are latency-bound otherwise)
            cw = max(self.lanes, min(cw, self.p) // 2)
            ka = max(1, min(8 * self.lanes // cw, k))
        nv = cw // self.lanes
        with kc.loop((col1 - col0) // cw, "tile") as ti:
            col = b.add(kc.idx(col0), b.mul(ti, kc.idx(cw)))
            base = b.add(b.mul(b.udiv(col, kc.idx(p)), kc.idx(k * p)), b.urem(col, kc.idx(p)))
            wp = self.at(mat, base)
            accs = [vec.zeros() if scale is not None else
                    vec.load(self.at(init, b.add(col, kc.idx(v * self.lanes)))) for v in range(nv)]
            accs += [vec.zeros()] * (nv * (ka - 1))

            def steps(acc: list, j0: ir.Value, count: int) -> list:
                acc = list(acc)
                for u in range(count):
                    j = b.add(j0, kc.idx(u)) if u else j0
                    xb = vec.splat(b.load(self.at(x, j)))
                    row = self.at(wp, b.mul(j, kc.idx(p)))
                    for v in range(nv):
                        w = load_weights(b, self.at(row, v * self.lanes), self.lanes)
                        acc[u * nv + v] = vec.fma(w, xb, acc[u * nv + v])
                return acc

            with for_range_carried(b, k // ka, kc.isize, accs, "j") as lp:
                lp.next = steps(lp.values, b.mul(lp.index, kc.idx(ka)), ka)
            acc = steps(lp.values, kc.idx(k - k % ka), k % ka)
            for v in range(nv):
                at = b.add(col, kc.idx(v * self.lanes))
                total = acc[v]
                for u in range(1, ka):
                    total = b.fadd(total, acc[u * nv + v], flags=FM)
                self.store_scaled(vec, total, scale, init, at, out)

    def project(self, x: ir.Value, wt_d: ir.Value, bx_d: ir.Value, scale: ir.Value | None) -> None:
        """gx[t][b] = W x[t][b] + bx for every step and batch row before the recurrence: tiles of
        ROWS rows share each weight vector load (a GEMM; per-row GEMVs streamed W once per row),
        the last rows one by one."""
        kc, b = self.kc, self.b
        rows = self.t * self.bt
        nv = 4 if kc.target.vector_registers == 32 else 2
        cw = nv * self.lanes
        tile = PROJECT_ROWS if self.p % cw == 0 and rows >= PROJECT_ROWS else 1

        def row(q: ir.Value) -> tuple[ir.Value, ir.Value]:
            t, bb = b.udiv(q, kc.idx(self.bt)), b.urem(q, kc.idx(self.bt))
            return (self.at(x, self.lin((t, self.xs[0]), (bb, self.xs[1]))),
                    self.at(self.gx, b.mul(q, kc.idx(self.n))))

        if tile > 1:
            with kc.loop(rows // tile, "pq") as qt:
                pairs = [row(b.add(b.mul(qt, kc.idx(tile)), kc.idx(r))) for r in range(tile)]
                self.gemm_rows([p[0] for p in pairs], self.i, wt_d, bx_d, [p[1] for p in pairs], scale, cw)
        with kc.loop(rows, "pr", start=rows - rows % tile if tile > 1 else 0) as q:
            xrow, out = row(q)
            self.gemv(xrow, self.i, wt_d, 0, self.n, bx_d, out, scale)

    def gemm_rows(self, xs: list[ir.Value], k: int, mat: ir.Value, init: ir.Value, outs: list[ir.Value],
                  scale: ir.Value | None, cw: int) -> None:
        """outs[r][:n] = init + sum_j xs[r][j] * M[j, :] for a tile of rows: each weight vector
        (widened once when int8/fp16) feeds one FMA per row."""
        b, kc, vec, p = self.b, self.kc, self.vec, self.p
        nv = cw // self.lanes
        with kc.loop(self.n // cw, "gt") as ti:
            col = b.mul(ti, kc.idx(cw))
            base = b.add(b.mul(b.udiv(col, kc.idx(p)), kc.idx(k * p)), b.urem(col, kc.idx(p)))
            wp = self.at(mat, base)
            init_v = [vec.load(self.at(init, b.add(col, kc.idx(v * self.lanes)))) for v in range(nv)]
            accs = [vec.zeros() if scale is not None else init_v[v] for _ in xs for v in range(nv)]
            with for_range_carried(b, k, kc.isize, accs, "gj") as lp:
                wrow = self.at(wp, b.mul(lp.index, kc.idx(p)))
                ws = [load_weights(b, self.at(wrow, v * self.lanes), self.lanes) for v in range(nv)]
                nxt = list(lp.values)
                for r, xr in enumerate(xs):
                    xb = vec.splat(b.load(self.at(xr, lp.index)))
                    for v in range(nv):
                        nxt[r * nv + v] = vec.fma(ws[v], xb, nxt[r * nv + v])
                lp.next = nxt
            for r, out in enumerate(outs):
                for v in range(nv):
                    self.store_scaled(vec, lp.values[r * nv + v], scale, init,
                                      b.add(col, kc.idx(v * self.lanes)), out)

    def store_scaled(self, vec: Vec, acc: ir.Value, scale: ir.Value | None, init: ir.Value,
                     at: ir.Value, out: ir.Value) -> None:
        """out[at:] = acc (init already in it) or, with int8 weights, init + scale * acc."""
        if scale is not None:
            acc = vec.fma(acc, vec.load(self.at(scale, at)), vec.load(self.at(init, at)))
        vec.store(acc, self.at(out, at))

    def gemv_bsr(self, x: ir.Value, d: int, col0: int, col1: int, init: ir.Value, out: ir.Value,
                 scale: ir.Value | None = None) -> None:
        """out[col0:col1] = init + R x with R as block-sparse rows (edgec/kernels/rnn/layout.py: block_sparse): per
        8-column block, its non-zero (j, 8 values) entries, BSR_UNROLL at a time into as many
        accumulator sets (independent FMA chains)."""
        b, kc = self.b, self.kc
        ptr, idx, val = (kc.ptr(n) for n in kc.inputs[9:12])
        vec = Vec(b, min(self.lanes, BSR_BLOCK))
        per = BSR_BLOCK // vec.lanes
        nblk = self.n // BSR_BLOCK
        with kc.loop((col1 - col0) // BSR_BLOCK, "blk") as bi:
            c = b.add(bi, kc.idx(col0 // BSR_BLOCK + d * (nblk + 1)))
            lo, hi = (self.widen(b.load(self.at(ptr, cc))) for cc in (c, b.add(c, kc.idx(1))))
            col = b.mul(b.add(bi, kc.idx(col0 // BSR_BLOCK)), kc.idx(BSR_BLOCK))
            first = [vec.zeros() if scale is not None else
                     vec.load(self.at(init, b.add(col, kc.idx(v * vec.lanes)))) for v in range(per)]
            sets = first + [vec.zeros()] * (per * (BSR_UNROLL - 1))
            with for_range_carried(b, hi, lo.type, sets, name="e", start=lo, step=BSR_UNROLL, nsw=False) as lp:
                nxt = list(lp.values)
                for u in range(BSR_UNROLL):
                    e = b.add(lp.index, kc.idx(u))
                    xb = vec.splat(b.load(self.at(x, self.widen(b.load(self.at(idx, e))))))
                    row = self.at(val, b.mul(e, kc.idx(BSR_BLOCK)))
                    for v in range(per):
                        k = u * per + v
                        nxt[k] = vec.fma(load_weights(b, self.at(row, v * vec.lanes), vec.lanes), xb,
                                         nxt[k])
                lp.next = nxt
            for v in range(per):
                acc = lp.values[v]
                for u in range(1, BSR_UNROLL):
                    acc = b.fadd(acc, lp.values[u * per + v], flags=FM)
                self.store_scaled(vec, acc, scale, init, b.add(col, kc.idx(v * vec.lanes)), out)

    def widen(self, v: ir.Value) -> ir.Value:
        return self.b.sext(v, self.kc.isize) if self.kc.isize.width > v.type.width else v

    def scales(self, which: int, d: int) -> ir.Value | None:
        """Per-column scales of int8 weights (input 12: Wt, 13: R), direction d; None otherwise."""
        names = self.kc.inputs + [""] * 14
        if self.kc.attrs.get("weights") != "int8" or not names[which]:
            return None
        return self.at(self.kc.ptr(names[which]), d * self.n)

    def recurrent(self, x: ir.Value, d: int, rt_d: ir.Value | None, col0: int, col1: int,
                  br_d: ir.Value) -> None:
        rs = self.scales(13, d)
        if rt_d is None:
            self.gemv_bsr(x, d, col0, col1, br_d, self.ga, rs)
        else:
            self.gemv(x, self.h, rt_d, col0, col1, br_d, self.ga, rs)

    def copy(self, dst: ir.Value, src: ir.Value | None, n: int, keep: ir.Value | None = None) -> None:
        """dst[:n] = src[:n] (zeros when src is None or `keep` is false); LLVM vectorizes it."""
        zero = ir.Constant(F32, 0.0)
        with self.kc.loop(n, "cp") as u:
            v = zero if src is None else self.b.load(self.at(src, u))
            self.b.store(v if keep is None else self.b.select(keep, v, zero), self.at(dst, u))

    # ---- the kernel ------------------------------------------------------------------
    def run(self) -> None:
        kc, b = self.kc, self.b
        x, wt, rt, bx, br, h0, c0, pp, sl = (kc.inputs + [""] * 9)[:9]
        for d in range(self.d):
            reverse = d == 1 or bool(kc.attrs["reverse"])
            wt_d = self.at(kc.ptr(wt), d * self.i * self.n)
            rt_d = self.at(kc.ptr(rt), d * self.h * self.n) if rt else None
            bx_d, br_d = self.at(kc.ptr(bx), d * self.n), self.at(kc.ptr(br), d * self.n)
            pp_d = self.at(kc.ptr(pp), d * 3 * self.hp) if pp else None
            if kc.attrs.get("projected"):  # W x on byte dots already (recurrent_dot.py)
                project_from_dots(self, d, bx_d)
            else:
                self.project(kc.ptr(x), wt_d, bx_d, self.scales(12, d))
            with kc.loop(self.bt, "sb") as bb:
                soff = self.lin((d, self.ss[0]), (bb, self.ss[1]))
                for state, init in ((self.hs, h0), (self.cs, c0 if self.op == "LSTM" else None)):
                    if state is self.cs and self.op != "LSTM":
                        continue
                    row = self.at(state, b.mul(bb, kc.idx(self.hp)))
                    self.copy(row, None, self.hp)
                    if init:
                        self.copy(row, self.at(kc.ptr(init), soff), self.h)
            with kc.loop(self.t, "t") as t, kc.loop(self.bt, "b") as bb:
                self.step(d, t, bb, reverse, rt_d, br_d, pp_d, sl)
            with kc.loop(self.bt, "ob") as bb:
                soff = self.lin((d, self.ss[0]), (bb, self.ss[1]))
                hrow = b.mul(bb, kc.idx(self.hp))
                # onnxruntime: a batch row of length 0 has zero final states
                keep = b.icmp_signed(">", kc.load(sl, bb), ir.Constant(I32, 0)) if sl else None
                self.copy(self.at(kc.ptr(kc.outputs[1]), soff), self.at(self.hs, hrow), self.h, keep)
                if self.op == "LSTM":
                    self.copy(self.at(kc.ptr(kc.outputs[2]), soff), self.at(self.cs, hrow), self.h, keep)

    def step(self, d: int, t: ir.Value, bb: ir.Value, reverse: bool, rt_d: ir.Value | None, br_d: ir.Value,
             pp_d: ir.Value | None, sl: str) -> None:
        kc, b = self.kc, self.b
        y = kc.ptr(kc.outputs[0])
        done = None
        if sl:
            length = kc.load(sl, bb)
            length = b.sext(length, kc.isize) if kc.isize.width > 32 else length
            active, idle, done = (b.append_basic_block(n) for n in ("active", "idle", "done"))
            b.cbranch(b.icmp_signed("<", t, length), active, idle)
            b.position_at_end(idle)
            self.copy(self.at(y, self.lin((t, self.ys[0]), (d, self.ys[1]), (bb, self.ys[2]))), None, self.h)
            b.branch(done)
            b.position_at_end(active)
            last = b.sub(length, kc.idx(1))
        else:
            last = kc.idx(self.t - 1)
        tt = b.sub(last, t) if reverse else t
        gxr = self.at(self.gx, self.lin((tt, self.bt * self.n), (bb, self.n)))
        hrow = self.at(self.hs, b.mul(bb, kc.idx(self.hp)))
        crow = self.at(self.cs, b.mul(bb, kc.idx(self.hp)))
        a = kc.attrs
        acts, clip = a["activations"][d], a["clip"]
        lbr0 = self.op == "GRU" and not a["linear_before_reset"]
        hin = hrow
        if a.get("recurrent_dot"):  # the quantized state times int8 R on byte dots
            scale, zp = quantize_state_bytes(self, hrow, self.rh)
            recurrent_dot(self, d, self.rh, scale, zp, br_d)
        else:
            if a.get("quantized_state"):
                self.quantize_state(hrow, self.rh)
                hin = self.rh
            self.recurrent(hin, d, rt_d, 0, 2 * self.hp if lbr0 else self.n, br_d)
        if lbr0:
            with self.units() as (u, gates):
                vh = self.vec.load(self.at(hrow, u))
                self.vec.store(cell.gru_reset(b, gates(gxr), vh, acts, clip), self.at(self.rh, u))
            self.recurrent(self.rh, d, rt_d, 2 * self.hp, self.n, br_d)
        with self.units() as (u, gates):
            g = gates(gxr)
            vh = self.vec.load(self.at(hrow, u))
            if self.op == "GRU":
                hn = cell.gru_cell(b, g, vh, acts, clip, bool(a["linear_before_reset"]))
            elif self.op == "LSTM":
                peep = None
                if pp_d is not None:
                    def peep(k: int, u: ir.Value = u) -> ir.Value:
                        return self.vec.load(self.at(pp_d, b.add(u, kc.idx(k * self.hp))))
                hn, cn = cell.lstm_cell(b, g, self.vec.load(self.at(crow, u)), peep, acts, clip,
                                        bool(a["input_forget"]))
                self.vec.store(cn, self.at(crow, u))
            else:
                hn = cell.rnn_cell(b, g, acts, clip)
            self.vec.store(hn, self.at(hrow, u))
        self.copy(self.at(y, self.lin((tt, self.ys[0]), (d, self.ys[1]), (bb, self.ys[2]))), hrow, self.h)
        if done is not None:
            b.branch(done)
            b.position_at_end(done)

    def quantize_state(self, src: ir.Value, dst: ir.Value) -> None:
        """dst = the state as onnxruntime's DynamicQuantizeLSTM feeds its recurrent GEMM: uint8
        over the row's range widened to 0 (scale (max - min) / 255, 1 for an empty range; zero
        point round(-min / scale)), dequantized again. One range per batch row (onnxruntime
        takes one over the batch: equal for batch 1)."""
        b, kc = self.b, self.kc
        scale, zp = dynamic_uint8_params(kc, self.hp, lambda u: b.load(self.at(src, u)))
        with kc.loop(self.hp, "qs") as u:
            q = round_clamp(b, b.fdiv(b.load(self.at(src, u)), scale), zp, 0, 255)
            b.store(b.fmul(b.sitofp(b.sub(q, zp), F32), scale), self.at(dst, u))

    @contextmanager
    def units(self) -> Iterator[tuple[ir.Value, Callable[[ir.Value], cell.Gates]]]:
        """A loop over vectors of hidden units: yields the unit offset u and a function making
        the cell's gate loads (gx row, ga at gate k * Hp + u) for that vector."""
        with self.kc.loop(self.hp // self.lanes, "u") as v:
            u = self.b.mul(v, self.kc.idx(self.lanes))

            def gates(gxr: ir.Value) -> cell.Gates:
                def load(which: str, k: int) -> ir.Value:
                    base = gxr if which == "gx" else self.ga
                    return self.vec.load(self.at(base, self.b.add(u, self.kc.idx(k * self.hp))))
                return cell.Gates(self.b, load)

            yield u, gates


@lowering("GRU", "LSTM", "RNN")
def lower_rnn(kc: KernelContext) -> None:
    _Rnn(kc).run()


@lowering("RNNPack")
def lower_rnn_pack(kc: KernelContext) -> None:
    """out[k] = sum over tables of (src[t[k]] if t[k] >= 0 else 0): weights fed at run time
    packed into the fused kernels' layout (the tables come from edgec/kernels/rnn/layout.py)."""
    b, src, out = kc.b, kc.inputs[0], kc.outputs[0]
    zero = ir.Constant(F32, 0.0)
    with kc.loop(kc.value(out).size, "k") as k:
        acc: ir.Value = zero
        for tbl in kc.inputs[1:]:
            j = kc.load(tbl, k)
            ok = b.icmp_signed(">=", j, ir.Constant(j.type, 0))
            j = b.select(ok, j, ir.Constant(j.type, 0))
            j = b.sext(j, kc.isize) if kc.isize.width > 32 else j
            acc = b.fadd(acc, b.select(ok, kc.load(src, j), zero), flags=FM)
        kc.store(out, k, acc)

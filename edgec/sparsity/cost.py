"""The per-layer cost rule: dense, BSR (values and block indices read from memory) or weights in
code (each non-zero block's values are constants next to its FMA). Costs are in units of
"one dense block" (one FMA + one weight-vector load, streamed from L2), calibrated on this
project's kernels:
  dense : every block;
  code  : one FMA with a constant operand per non-zero block + one broadcast of x[k] per
          (column tile, row k) that has a non-zero block;
  bsr   : per non-zero block an index load, a broadcast and a value load (+ padding to the
          unroll, + per-column overhead).
Weights in code is only allowed while its estimated .text stays under `code_limit`."""

from __future__ import annotations

from dataclasses import dataclass

from edgec.options import SparseOptions
from edgec.sparsity.blocks import BlockMatrix
from edgec.targets import TargetProfile

# Above this block density the auto rule does not even consider sparse formats (XNNPACK's
# sparse kernels engage only below ~1/3 density; weights in code wins a bit higher up).
MAX_SPARSE_DENSITY = 0.75
# Measured on the host (Zen 3, 256x256, min of repeated runs): dense 0.33 ns per block; code
# 0.44 ns per non-zero block including its share of broadcasts; BSR 0.6-0.65 ns per block.
_COST = {"dense": 1.0, "code_block": 1.1, "code_bcast": 0.6, "bsr_block": 1.9, "bsr_col": 4.0}
BSR_UNROLL = 4  # independent accumulators per BSR column (hides FMA latency)


def block_width(profile: TargetProfile) -> int:
    """Lanes of one block = one vector of the sparse kernels (8 on AVX2/AVX-512, 4 on NEON)."""
    return min(8, profile.fp32_lanes)


def max_tile(profile: TargetProfile) -> int:
    """Accumulator vectors per column tile: registers minus the broadcast (and, where FMAs cannot
    take a memory operand, the loaded constant) minus one spare."""
    regs = profile.vector_registers
    if profile.arch == "x86_64":
        return regs - 2
    return regs - 4 if regs == 32 else regs // 2  # armv7: 16 q registers, literal-pool loads


def tiles(nvec: int, tmax: int) -> list[tuple[int, int]]:
    """[v0, v1) ranges of output vectors, as even as possible, each at most `tmax` long."""
    count = -(-nvec // tmax)
    base, extra = divmod(nvec, count)
    out, v = [], 0
    for t in range(count):
        size = base + (1 if t < extra else 0)
        out.append((v, v + size))
        v += size
    return out


@dataclass(frozen=True)
class Choice:
    format: str  # "dense" | "bsr" | "code"
    density: float
    blocks: str
    nnz_blocks: int
    broadcasts: int
    text_bytes_est: int
    const_bytes: int
    costs: dict[str, float]
    reason: str

    def to_attr(self) -> dict:
        return {"format": self.format, "density": round(self.density, 4), "blocks": self.blocks,
                "nnz_blocks": self.nnz_blocks, "text_bytes_est": self.text_bytes_est,
                "const_bytes": self.const_bytes, "cost": self.costs, "reason": self.reason}


def broadcasts(bm: BlockMatrix, tile_list: list[tuple[int, int]]) -> int:
    return int(sum(bm.mask[:, v0:v1].any(axis=1).sum() for v0, v1 in tile_list))


def choose(bm: BlockMatrix, profile: TargetProfile, opts: SparseOptions, code: bool = True) -> Choice:
    """`code`: whether the op has a weights-in-code kernel (the RNN recurrences have only BSR;
    --sparsity code then means BSR for them)."""
    tl = tiles(bm.nvec, max_tile(profile))
    nb = bm.nnz_blocks
    bc = broadcasts(bm, tl)
    per_block, per_bcast, per_vec = profile.code_bytes
    text = nb * per_block + bc * per_bcast + bm.nvec * per_vec + 64
    consts = nb * bm.bw * 4
    costs = {"dense": _COST["dense"] * bm.k * bm.nvec,
             "bsr": _COST["bsr_block"] * (nb + BSR_UNROLL * bm.nvec / 2) + _COST["bsr_col"] * bm.nvec,
             "code": _COST["code_block"] * nb + _COST["code_bcast"] * bc}
    costs = {k: round(v, 1) for k, v in costs.items() if code or k != "code"}
    text = text if code else 0
    fits = code and text <= opts.code_limit
    if opts.mode in ("code", "bsr"):
        fmt = opts.mode if opts.mode == "bsr" or fits else "bsr"
        why = "code over the size limit" if code else "no weights-in-code kernel for this op"
        reason = f"forced by --sparsity {opts.mode}" + ("" if fmt == opts.mode else f"; {why}")
    elif bm.density > MAX_SPARSE_DENSITY:
        fmt, reason = "dense", f"block density > {MAX_SPARSE_DENSITY}"
    else:
        allowed = {"dense": costs["dense"], "bsr": costs["bsr"]}
        if fits:
            allowed["code"] = costs["code"]
        fmt = min(allowed, key=lambda f: (allowed[f], f))
        reason = "lowest estimated cost" + ("" if fits or not code else
                                            f"; code over the {opts.code_limit} B limit")
    return Choice(fmt, bm.density, f"1x{bm.bw}", nb, bc, text, consts, costs, reason)

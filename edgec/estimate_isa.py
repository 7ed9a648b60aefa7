"""Work per iteration of a hot loop, read from its instructions, for the cycle model
(edgec/estimate.py): the multiply-accumulates its FMA/dot instructions do and the fp32-sized
elements its stores write. The model divides a layer's MACs (or output elements) by these to
get the loop's trip count, which the assembly does not tell. Syntax: LLVM's x86 AT&T, AArch64
and ARMv7 output (what edgec.asm reads)."""

from __future__ import annotations

import re

_X86_WIDTH = {"zmm": 16, "ymm": 8, "xmm": 4}  # fp32 lanes of a register
_X86_FMA = re.compile(r"^vf(?:n?m(?:add|sub)|maddsub|msubadd)\d{3}(p|s)[sd]$")
_X86_DOT = {"vpdpbusd": 4, "vpdpbusds": 4, "vpdpwssd": 2, "vpdpwssds": 2, "vpmaddubsw": 2, "vpmaddwd": 2}
_X86_GPR_STORE = {"b": 0.25, "w": 0.5, "l": 1.0, "q": 2.0}


def _x86_lanes(operands: str) -> int:
    m = re.search(r"%(zmm|ymm|xmm)", operands)
    return _X86_WIDTH[m.group(1)] if m else 1


def _x86(mnem: str, ops: list[str]) -> tuple[float, float]:
    text = ",".join(ops)
    m = _X86_FMA.match(mnem)
    if m:
        return (_x86_lanes(text) if m.group(1) == "p" else 1), 0.0
    if mnem in _X86_DOT:
        return _x86_lanes(text) * _X86_DOT[mnem], 0.0
    if ops and "(" in ops[-1] and mnem.startswith(("vmov", "mov")) and not mnem.startswith(("movs", "movz")):
        if "%" in ops[0] and re.search(r"%[xyz]mm", ops[0]):
            width = _X86_WIDTH[re.search(r"%([xyz]mm)", ops[0]).group(1)]  # type: ignore[union-attr]
            if mnem in ("vmovss", "movss", "vmovd", "movd"):
                return 0.0, 1.0
            if mnem in ("vmovsd", "movsd", "vmovq", "movq", "vmovlps", "vmovhps"):
                return 0.0, 2.0
            return 0.0, float(width)
        return 0.0, _X86_GPR_STORE.get(mnem[-1], 1.0)
    return 0.0, 0.0


_A64_ARR = re.compile(r"v\d+\.(\d+)([bhsd])")
_A64_Q = {"q": 4.0, "d": 2.0, "s": 1.0, "h": 0.5, "b": 0.25, "x": 2.0, "w": 1.0}


def _a64_lanes(op: str) -> int:
    m = _A64_ARR.search(op)
    return int(m.group(1)) if m else 1


def _aarch64(mnem: str, ops: list[str]) -> tuple[float, float]:
    if mnem in ("fmla", "fmls"):
        return float(_a64_lanes(ops[0])), 0.0
    if mnem in ("fmadd", "fmsub", "fnmadd", "fnmsub"):
        return 1.0, 0.0
    if mnem in ("sdot", "udot", "usdot"):
        return 4.0 * _a64_lanes(ops[0]), 0.0
    if mnem in ("smlal", "smlal2", "umlal", "umlal2", "sadalp", "uadalp", "smmla", "ummla"):
        return float(_a64_lanes(ops[0])) * (2 if mnem.endswith("adalp") else 1) * (8 if mnem.endswith("mmla") else 1), 0.0
    if mnem in ("str", "stur", "stp", "stnp", "strb", "strh", "sturb", "sturh"):
        regs = [o for o in ops if not o.startswith("[") and not o.startswith("#")][:2 if "p" in mnem[2:] else 1]
        size = {"strb": 0.25, "sturb": 0.25, "strh": 0.5, "sturh": 0.5}.get(mnem)
        return 0.0, sum(size if size else _A64_Q.get(r[:1].lower(), 1.0) for r in regs)
    if mnem.startswith("st") and mnem[2:3] in "1234" and ops and ops[0].startswith("{"):
        elems = 0.0
        for r in ops[0].strip("{}").split(","):
            m = _A64_ARR.search(r)
            elems += int(m.group(1)) * {"b": 0.25, "h": 0.5, "s": 1.0, "d": 2.0}[m.group(2)] if m else 1.0
        return 0.0, elems
    return 0.0, 0.0


def _armv7_regs(reglist: str) -> list[str]:
    out = []
    for part in reglist.strip("{}").split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-")
            out += [f"{a[0]}{k}" for k in range(int(a[1:]), int(b.strip()[1:]) + 1)]
        elif part:
            out.append(part)
    return out


def _armv7(mnem: str, ops: list[str]) -> tuple[float, float]:
    base, _, kind = mnem.partition(".")
    lanes = {"q": 4.0, "d": 2.0, "s": 1.0}.get(ops[0][:1].lower(), 1.0) if ops else 1.0
    if base in ("vmla", "vfma", "vmls", "vfms") and kind.startswith("f32"):
        return lanes, 0.0
    if base in ("vmlal",) and ops:
        return 4.0, 0.0
    if base.startswith(("vst1", "vst2", "vst3", "vst4", "vstm", "vstr", "vpush")):
        # the register list in braces (vst1-4, vstm after its base register, vpush); vstr: one register
        reglist = next((o for o in ops if o.startswith("{")), None)
        regs = _armv7_regs(reglist) if reglist else ops[:1]
        return 0.0, sum({"q": 4.0, "d": 2.0, "s": 1.0}.get(r[:1].lower(), 1.0) for r in regs)
    if base in ("str", "strd"):
        return 0.0, 2.0 if base == "strd" else 1.0
    return 0.0, 0.0


_READERS = {"x86_64": _x86, "aarch64": _aarch64, "armv7": _armv7}


def loop_work(instructions: list[str], arch: str) -> tuple[float, float]:
    """(MACs, fp32-sized elements stored) per iteration of a loop's instructions."""
    from edgec.asm import _split

    macs = elems = 0.0
    read = _READERS[arch]
    for s in instructions:
        mnem, ops = _split(s)
        m, e = read(mnem, ops)
        macs += m
        elems += e
    return macs, elems

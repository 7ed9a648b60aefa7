"""Assembly of a model's kernels and their innermost loops, for the assembly checks of tests/asm
(docs/asm-checks.md). `kernel_assembly` runs a build's import, passes and lowerings and asks
LLVM for text instead of objects, one module per kernel symbol (`<prefix>_k<N>_<op>`).
`innermost_loops` finds a function's loops from its branches (a label that a later conditional
branch jumps back to) and keeps those containing no other loop. Reads LLVM's x86 AT&T (and
Intel), AArch64 and ARMv7 syntax. Nothing in a build imports this module.

    python -m edgec.asm model.onnx rpi4 [SYMBOL]   # innermost loops of every kernel (or one)
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

import onnx

from edgec.codegen.executor import KernelUnit, kernel_ir, plan_kernels
from edgec.codegen.module import Codegen
from edgec.driver import front_end
from edgec.ir.graph import Graph
from edgec.options import BuildOptions
from edgec.pipeline import run_pipeline, target_passes
from edgec.targets import TargetProfile, get_profile


def kernel_assembly(model: onnx.ModelProto, device: str | TargetProfile,
                    options: BuildOptions | None = None, *, prefix: str = "model",
                    input_shapes: dict[str, list[int]] | None = None,
                    bind: dict[str, object] | None = None, opt_level: int = 3) -> dict[str, str]:
    """Kernel symbol -> the assembly of its module, in call order, as `edgec build` compiles
    it for `device` (a profile name or a profile) with `options`."""
    profile = get_profile(device) if isinstance(device, str) else device
    options = options or BuildOptions()
    _, g, units = lowered_kernels(model, profile, options, prefix=prefix, input_shapes=input_shapes, bind=bind,
                                  opt_level=opt_level)
    return units_assembly(g, units, profile, options, prefix=prefix, opt_level=opt_level)


def units_assembly(g: Graph, units: list[KernelUnit], profile: TargetProfile, options: BuildOptions, *,
                   prefix: str = "model", opt_level: int = 3) -> dict[str, str]:
    """Kernel symbol -> the assembly of its module, for kernels planned by `lowered_kernels`."""
    cg = Codegen(profile, opt_level)
    return {u.name: cg.emit_assembly(kernel_ir(g, u, profile, prefix, options)) for u in units}


def lowered_kernels(model: onnx.ModelProto, profile: TargetProfile, options: BuildOptions, *,
                    prefix: str = "model", input_shapes: dict[str, list[int]] | None = None,
                    bind: dict[str, object] | None = None, opt_level: int = 3) -> tuple[Graph, Graph, list[KernelUnit]]:
    """The graph before and after the target passes, and the kernels in call order, as
    `edgec build` makes them."""
    front = front_end(model, input_shapes, lambda msg: None, None, bind).graph
    g = run_pipeline(front.copy(), target_passes(profile, options), dump_initial=False)
    return front, g, plan_kernels(g, profile, prefix, options, opt_level)


@dataclass(frozen=True, eq=False)
class Loop:
    """Lines [start, end] of a function body: the loop's label to the branch back to it."""

    label: str
    start: int
    end: int
    body: tuple[str, ...]  # the whole function (stack_stores reads what precedes the loop)

    @property
    def text(self) -> str:
        return "\n".join(self.body[self.start:self.end + 1])

    def instructions(self) -> list[str]:
        """Without labels, comments and directives, whitespace normalized."""
        return [s for s in map(_strip, self.body[self.start:self.end + 1])
                if s and not _LABEL.match(s) and not s.startswith(".")]

    def count(self, pattern: str | re.Pattern) -> int:
        return sum(bool(re.search(pattern, s)) for s in self.instructions())


_LABEL = re.compile(r'^\s*("[^"]+"|[\w.$]+):')
# comments: x86 `# ...`, ARM `@ ...`, AArch64 `// ...` (ARM immediates `#16` have no blank)
_COMMENT = re.compile(r"(?:^|\s)(?:[#@;](?=\s|$)|//).*$")
# conditional branches: x86 jcc; AArch64 b.cc, cb(n)z, tb(n)z; ARMv7 bcc (.w), cb(n)z
_COND = re.compile(r"^(?:j(?!mp)[a-z]{1,5}|b\.[a-z]{2}|cbn?z|tbn?z"
                   r"|b(?:eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le)(?:\.[wn])?)$")


def _strip(line: str) -> str:
    return " ".join(_COMMENT.sub("", line).split())


def _split(s: str) -> tuple[str, list[str]]:
    """Mnemonic (lower case) and operands, split at the commas outside () [] {}."""
    mnem, _, rest = s.partition(" ")
    return mnem.lower(), [o.strip() for o in re.split(r",(?![^([{]*[)\]}])", rest) if o.strip()]


def function_body(asm: str, symbol: str) -> list[str]:
    """The lines of `symbol`, from its label to its end (`.Lfunc_end`, `.size`, `.cfi_endproc`
    or the next global label)."""
    lines = asm.splitlines()
    starts = [i for i, line in enumerate(lines)  # Mach-O symbols carry a leading "_"
              if (m := _LABEL.match(line)) and m.group(1).strip('"') in (symbol, f"_{symbol}")]
    if not starts:
        raise KeyError(f"no function {symbol!r} in the assembly")
    for j in range(starts[0] + 1, len(lines)):
        s, m = lines[j].strip(), _LABEL.match(lines[j])
        if s.lstrip(".").startswith(("Lfunc_end", "size", "cfi_endproc")) or (
                m and not m.group(1).strip('"').startswith((".L", "L", "ltmp", "$"))):
            return lines[starts[0]:j]
    return lines[starts[0]:]


def loops(body: list[str]) -> list[Loop]:
    """The loops of a function body: a label a later conditional branch jumps back to, up to
    its last such branch."""
    labels: dict[str, int] = {}
    found: dict[str, Loop] = {}
    frozen = tuple(body)
    for i, line in enumerate(body):
        if m := _LABEL.match(line):
            labels[m.group(1).strip('"')] = i
            continue
        mnem, ops = _split(_strip(line))
        target = ops[-1].strip('"') if ops else ""
        if _COND.match(mnem) and target in labels:
            found[target] = Loop(target, labels[target], i, frozen)
    return sorted(found.values(), key=lambda lp: (lp.end, -lp.start))


def innermost_loops(asm: str, symbol: str) -> list[Loop]:
    """The loops of `symbol` that contain no other loop (its hot loops), in address order."""
    found = loops(function_body(asm, symbol))
    return [lp for lp in found
            if not any(o is not lp and lp.start <= o.start and o.end <= lp.end for o in found)]


_X86_READ_ONLY = ("cmp", "test", "bt", "ucomis", "comis", "vucomis", "vcomis", "vptest", "prefetch",
                  "call", "jmp", "mul", "div", "idiv")
_ARM_ALIAS = {"r13": "sp", "r11": "fp", "x29": "fp", "r12": "ip"}


def _reg(op: str) -> str:
    r = op.strip().rstrip("!").lower()
    r = _ARM_ALIAS.get(r, r)
    return "x" + r[1:] if re.fullmatch(r"w\d+", r) else r


def stack_stores(loop: Loop, arch: str) -> list[str]:
    """The loop's stores to the stack (register spills) on `arch` ("x86_64", "aarch64",
    "armv7"). ARM spills often go through a register set from sp (`add r0, sp, #1000` then
    `vstmia r0, {d28, d29}`): such registers are followed from the function's start."""
    body = [_strip(s) for s in loop.body[:loop.end + 1]]
    if arch == "x86_64":
        text = "\n".join(body)
        bases = "rsp|esp" + ("|rbp" if re.search(r"mov\w*\s+%rsp,\s*%rbp|mov\w*\s+rbp,\s*rsp", text) else "")
        att, intel = re.compile(rf"\(%(?:{bases})\b"), re.compile(rf"\[(?:{bases})\b")
        out = []
        for s in body[loop.start:]:
            mnem, ops = _split(s)
            if ops and not mnem.startswith(_X86_READ_ONLY) and (
                    mnem.startswith("push") or att.search(ops[-1] if "%" in s else ops[0])
                    or intel.search(ops[0])):
                out.append(s)
        return out
    derived, out = {"sp"}, []
    for i, s in enumerate(body):
        mnem, ops = _split(s)
        if not ops or _LABEL.match(s) or s.startswith("."):
            continue
        base = None
        if re.match(r"(?:v?st(?:r|p|ur|np|[1-4]|m)|v?push)", mnem):
            addr = next((o for o in ops if o.startswith("[")), None)
            base = ("sp" if "push" in mnem else _reg(re.split(r"[\],:]", addr[1:])[0]) if addr
                    else _reg(ops[0]))
        elif mnem.split(".")[0] in ("add", "sub", "mov", "addw", "subw") and len(ops) >= 2:
            (derived.add if _reg(ops[1]) in derived else derived.discard)(_reg(ops[0]))
            derived.add("sp")
        elif _reg(ops[0]) != "sp" and not re.match(r"v?ldm|cmp|cmn|tst|teq", mnem):
            derived.discard(_reg(ops[0]))  # written (a load-multiple's first operand is its base)
        if base in derived and i >= loop.start:
            out.append(s)
    return out


def describe(asm: str, symbol: str, arch: str, pattern: str | None = None) -> str:
    """One line per innermost loop of `symbol`: label, instructions, matches of `pattern`,
    stack stores."""
    rows = [f"{symbol}:"]
    for lp in innermost_loops(asm, symbol):
        hits = f", {lp.count(pattern)} x /{pattern}/" if pattern else ""
        rows.append(f"  {lp.label}: {len(lp.instructions())} instructions{hits}, "
                    f"{len(stack_stores(lp, arch))} stack stores")
    return "\n".join(rows)


def main(argv: list[str]) -> None:
    profile = get_profile(argv[1])
    for sym, text in kernel_assembly(onnx.load(argv[0]), profile).items():
        if len(argv) < 3 or argv[2] == sym:
            print(describe(text, sym, profile.arch))
            for lp in innermost_loops(text, sym) if len(argv) > 2 else []:
                print(lp.text)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Codegen: owns the LLVM target machine for one device profile; verifies, optimizes and emits
objects (after numba's Codegen/CodeLibrary split: IR is built elsewhere, this turns it into
machine code). The host triple is never hard-coded: profiles carry it."""

from __future__ import annotations

import re

import llvmlite.binding as llvm
import numpy as np

from edgec.codegen.llvm_init import init_llvm
from edgec.targets import TargetProfile

_DEFINE = re.compile(r"^(define [^\n]*\))", re.MULTILINE)


def add_function_attrs(ir_text: str) -> str:
    """Mark every function `"no-builtins"` so LLVM never turns loops into memcpy/memset calls:
    generated code must link without libc."""
    return _DEFINE.sub(lambda m: m.group(1) + ' nounwind "no-builtins"', ir_text)


class Codegen:
    def __init__(self, profile: TargetProfile, opt_level: int = 3):
        init_llvm()
        self.profile = profile
        target = llvm.Target.from_triple(profile.triple)
        self.tm = target.create_target_machine(cpu=profile.cpu, features=profile.features,
                                               opt=opt_level, reloc="pic", codemodel="default")
        self.opt_level = opt_level

    @property
    def data_layout(self) -> str:
        return str(self.tm.target_data)

    def _parse(self, ir_text: str, optimize: bool) -> llvm.ModuleRef:
        mod = llvm.parse_assembly(add_function_attrs(ir_text) if optimize else ir_text)
        mod.triple = self.profile.triple
        mod.data_layout = self.data_layout
        mod.verify()
        return mod

    def _prepare(self, ir_text: str, optimize: bool) -> llvm.ModuleRef:
        return self._optimize(self._parse(ir_text, optimize), optimize)

    def _optimize(self, mod: llvm.ModuleRef, optimize: bool = True) -> llvm.ModuleRef:
        if optimize:
            pto = llvm.create_pipeline_tuning_options(speed_level=self.opt_level)
            pto.loop_vectorization = True
            pto.slp_vectorization = True
            pb = llvm.create_pass_builder(self.tm, pto)
            pb.getModulePassManager().run(mod, pb)
        return mod

    def emit_object(self, ir_text: str, optimize: bool = True) -> bytes:
        return self.tm.emit_object(self._prepare(ir_text, optimize))

    def emit_linked(self, ir_texts: list[str]) -> bytes:
        """One object from several modules linked at the IR level (targets whose linker cannot
        merge objects: edgec/codegen/objects.py)."""
        mods = [self._parse(t, True) for t in ir_texts]
        for m in mods[1:]:
            mods[0].link_in(m)
        return self.tm.emit_object(self._optimize(mods[0]))

    def emit_assembly(self, ir_text: str, optimize: bool = True) -> str:
        return self.tm.emit_assembly(self._prepare(ir_text, optimize))

    def weights_object(self, symbol: str, blob: bytes) -> bytes:
        """An object holding the weight blob as one 64-byte aligned read-only array."""
        n = max(len(blob), 1)
        data = np.frombuffer(blob.ljust(n, b"\0"), np.uint8)
        hexd = np.frombuffer(b"0123456789ABCDEF", np.uint8)
        esc = np.empty((n, 3), np.uint8)
        esc[:, 0] = ord("\\")
        esc[:, 1] = hexd[data >> 4]
        esc[:, 2] = hexd[data & 15]
        text = (f'@"{symbol}" = hidden constant [{n} x i8] c"{esc.tobytes().decode("ascii")}", '
                "align 64\n")
        return self.emit_object(text, optimize=False)  # data only: no passes, no attribute rewrite

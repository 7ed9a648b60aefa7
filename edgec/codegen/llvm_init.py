"""One-time LLVM initialization (targets and asm printers; llvm.initialize() is deprecated)."""

from functools import cache

import llvmlite.binding as llvm


@cache
def init_llvm() -> None:
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()

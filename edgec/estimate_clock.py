"""This machine's effective core clock, for the cycle model on the host (edgec/estimate.py).

In a VM, and on any CPU that boosts, neither cpufreq nor /proc/cpuinfo says the clock the core
runs at: measure it. A loop of 200 dependent register adds (latency 1 cycle each, on every
x86-64 and AArch64 core) is JIT-compiled with llvmlite and timed; adds per second = cycles per
second. Best of many short runs (~0.3 ms each: on a busy machine some of them run undisturbed)."""

from __future__ import annotations

import ctypes
import platform
import time

_ADD = {"x86_64": "addq $$1, %rax", "aarch64": "add x9, x9, #1"}
_CLOBBER = {"x86_64": "~{rax}", "aarch64": "~{x9}"}
CHAIN = 200


def _ir(arch: str) -> str:
    return rf'''
define void @spin(i64 %n) {{
entry:
  br label %loop
loop:
  %i = phi i64 [0, %entry], [%j, %loop]
  call void asm sideeffect ".rept {CHAIN}\0A{_ADD[arch]}\0A.endr", "{_CLOBBER[arch]}"()
  %j = add i64 %i, 1
  %c = icmp ult i64 %j, %n
  br i1 %c, label %loop, label %exit
exit:
  ret void
}}
'''


def measured_clock_ghz(rounds: int = 200, iterations: int = 5_000) -> float | None:
    """The core clock in GHz as the add chain sees it; None on another architecture."""
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
    if arch not in _ADD:
        return None
    import llvmlite.binding as llvm

    from edgec.codegen.llvm_init import init_llvm

    init_llvm()
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    llvm.initialize_native_asmparser()
    module = llvm.parse_assembly(_ir(arch))
    module.verify()
    tm = llvm.Target.from_default_triple().create_target_machine()
    engine = llvm.create_mcjit_compiler(module, tm)
    engine.finalize_object()
    spin = ctypes.CFUNCTYPE(None, ctypes.c_int64)(engine.get_function_address("spin"))
    spin(iterations * 20)  # warm up (and let the core leave its idle clock)
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        spin(iterations)
        best = min(best, time.perf_counter() - t)
    return iterations * CHAIN / best / 1e9

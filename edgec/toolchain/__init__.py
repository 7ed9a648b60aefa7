"""Finding and calling C compilers, archivers and emulators for a device profile."""

from edgec.toolchain.cc import Toolchain, find_toolchain, run_binary

__all__ = ["Toolchain", "find_toolchain", "run_binary"]

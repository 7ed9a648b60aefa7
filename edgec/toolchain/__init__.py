"""Finding and calling C compilers, archivers and emulators for a device profile."""

from edgec.targets import TargetProfile
from edgec.toolchain.apple import find_apple_toolchain
from edgec.toolchain.cc import Toolchain, find_gnu_toolchain, run_binary

__all__ = ["Toolchain", "find_toolchain", "run_binary"]


def find_toolchain(profile: TargetProfile) -> Toolchain:
    """The C toolchain of `profile`: gcc-style for ELF targets, clang + llvm-ar for iOS
    (edgec/toolchain/apple.py)."""
    if profile.object_format == "macho":
        return find_apple_toolchain(profile)  # type: ignore[return-value]
    return find_gnu_toolchain(profile)

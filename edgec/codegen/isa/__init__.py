"""Target intrinsics, one module per ISA, each a small typed wrapper around the LLVM intrinsic
it emits. Kernels call these instead of naming `llvm.x86.*`/`llvm.aarch64.*` themselves, so an
ISA's instruction choices live in one file. armv7 has no module: its kernels use LLVM's generic
vector operations, which select NEON (vmla, vmull, vpadd) on their own."""

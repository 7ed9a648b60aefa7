"""A freestanding test driver for the Android slices: no libc (raw Linux syscalls), so it links
against softfp armeabi-v7a code as well as arm64/x86_64, statically (with lib<name>.a) or
dynamically (loading the bundle's lib<name>.so through glibc's ld.so under qemu-user).
It reads every input's bytes from stdin, runs the model and writes the outputs to stdout."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from edgec.targets import get_profile
from edgec.toolchain import find_toolchain
from edgec.toolchain.lld import builtins_library, link_dynamic_exe, link_static_exe

DRIVER_C = r"""
#include "model.h"

static unsigned char arena[MODEL_ARENA_BYTES + 1] __attribute__((aligned(64)));

#if defined(__aarch64__)
#define SYS_READ 63
#define SYS_WRITE 64
#define SYS_EXIT 93
static long sys3(long n, long a, long b, long c) {
  register long x8 __asm__("x8") = n, x0 __asm__("x0") = a, x1 __asm__("x1") = b, x2 __asm__("x2") = c;
  __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
  return x0;
}
__asm__(".text\n.global _start\n_start:\n mov x29, #0\n bl edgec_driver_main\n b .\n");
#elif defined(__arm__)
#define SYS_READ 3
#define SYS_WRITE 4
#define SYS_EXIT 1
static long sys3(long n, long a, long b, long c) {
  register long r7 __asm__("r7") = n, r0 __asm__("r0") = a, r1 __asm__("r1") = b, r2 __asm__("r2") = c;
  __asm__ volatile("svc #0" : "+r"(r0) : "r"(r7), "r"(r1), "r"(r2) : "memory");
  return r0;
}
__asm__(".text\n.arm\n.global _start\n.type _start,%function\n_start:\n mov fp, #0\n bl edgec_driver_main\n b .\n");
#elif defined(__x86_64__)
#define SYS_READ 0
#define SYS_WRITE 1
#define SYS_EXIT 60
static long sys3(long n, long a, long b, long c) {
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return ret;
}
__asm__(".text\n.global _start\n_start:\n xor %ebp, %ebp\n and $-16, %rsp\n call edgec_driver_main\n hlt\n");
#endif

static int io_all(long nr, int fd, unsigned char *p, size_t n) {
  while (n > 0) {
    long got = sys3(nr, fd, (long)p, (long)n);
    if (got <= 0) return 0;
    p += got;
    n -= (size_t)got;
  }
  return 1;
}

static int drive(void) {
  edgec_ctx ctx;
  int i;
  if (model_verify_weights() != EDGEC_OK) return 7; /* this slice's blob vs its own table */
  if (model_init(&ctx, arena, sizeof arena, 1) != EDGEC_OK) return 3;
  for (i = 0; i < model_info.num_inputs; ++i)
    if (!io_all(SYS_READ, 0, (unsigned char *)model_input_ptr(&ctx, i), model_info.inputs[i].bytes)) return 4;
  if (model_run(&ctx) != EDGEC_OK) return 5;
  for (i = 0; i < model_info.num_outputs; ++i)
    if (!io_all(SYS_WRITE, 1, (unsigned char *)model_output_ptr(&ctx, i), model_info.outputs[i].bytes)) return 6;
  return 0;
}

void edgec_driver_main(void) {
  sys3(SYS_EXIT, drive(), 0, 0);
  for (;;) {}
}
"""

# glibc's dynamic loader inside qemu-user's sysroot (-L), per Android ABI.
INTERPRETER = {"arm64-v8a": "/lib/ld-linux-aarch64.so.1", "armeabi-v7a": "/lib/ld-linux.so.3",
               "x86_64": "/lib64/ld-linux-x86-64.so.2"}


class Driver:
    """Builds the driver for one slice of an Android bundle and runs it (qemu for ARM)."""

    def __init__(self, bundle: Path, device: str, dynamic: bool):
        self.profile = get_profile(device)
        self.bundle = bundle
        self.dir = Path(tempfile.mkdtemp(prefix="edgec-driver-"))
        abi = self.profile.abi
        tc = find_toolchain(self.profile)
        (self.dir / "driver.c").write_text(DRIVER_C)
        extra = ("-marm", "-fomit-frame-pointer") if self.profile.arch == "armv7" else ()
        [obj] = tc.compile_c(["driver.c"], self.dir, [str(bundle / "include")], extra)
        if dynamic:
            so = bundle / "android" / "jniLibs" / abi / "libmodel.so"
            shutil.copyfile(so, self.dir / "libmodel.so")
            link_dynamic_exe(self.profile, "driver", [obj, "libmodel.so"], INTERPRETER[abi], self.dir)
        else:
            link_static_exe(self.profile, "driver", [obj, str(bundle / "lib" / abi / "libmodel.a")],
                            builtins_library(tc), self.dir)
        self.exe = self.dir / "driver"

    def run(self, inputs: list[np.ndarray], outputs: list[tuple[tuple[int, ...], np.dtype]]) -> list[np.ndarray]:
        argv = [*self.profile.exec_wrapper, str(self.exe)]
        stdin = b"".join(np.ascontiguousarray(a).tobytes() for a in inputs)
        proc = subprocess.run(argv, input=stdin, capture_output=True, timeout=120)
        assert proc.returncode == 0, f"driver exit {proc.returncode}: {proc.stderr[-500:]!r}"
        res, pos = [], 0
        for shape, dtype in outputs:
            n = int(np.prod(shape)) * np.dtype(dtype).itemsize
            res.append(np.frombuffer(proc.stdout[pos:pos + n], dtype).reshape(shape))
            pos += n
        assert pos == len(proc.stdout), "driver wrote more bytes than the outputs hold"
        return res

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

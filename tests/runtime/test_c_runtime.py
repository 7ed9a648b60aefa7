"""The C runtime's status codes, and two models linked into one program (symbol prefixes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

import edgec
from edgec.targets import get_profile
from edgec.toolchain import find_toolchain, run_binary
from tests.helpers import make_model

C_TEST = r"""
#include <stdio.h>
#include <string.h>
#include "m1.h"
#include "m2.h"

static unsigned char arena1[M1_ARENA_BYTES + 64] __attribute__((aligned(64)));
static unsigned char arena2[M2_ARENA_BYTES] __attribute__((aligned(64)));
static int failures = 0;
#define EXPECT(call, want) do { edgec_status s_ = (call); if (s_ != (want)) { \
  printf("FAIL line %d: %s -> %s, want %s\n", __LINE__, #call, edgec_status_str(s_), edgec_status_str(want)); \
  failures++; } } while (0)

int main(void) {
  edgec_ctx ctx, ctx2;
  memset(&ctx, 0, sizeof ctx);
  float x[6] = {-3, -2, -1, 1, 2, 3}, y[6];
  EXPECT(m1_run(&ctx), EDGEC_ERR_STATE);                       /* not initialized */
  EXPECT(m1_init(NULL, arena1, sizeof arena1, 1), EDGEC_ERR_NULL);
  EXPECT(m1_init(&ctx, arena1, M1_ARENA_BYTES - 1, 1), EDGEC_ERR_ARENA_TOO_SMALL);
  EXPECT(m1_init(&ctx, arena1 + 4, M1_ARENA_BYTES, 1), EDGEC_ERR_ALIGNMENT);
  EXPECT(m1_init(&ctx, arena1, sizeof arena1, 0), EDGEC_ERR_THREADS);
  EXPECT(m1_init(&ctx, arena1, M1_ARENA_BYTES, 1), EDGEC_OK);
  EXPECT(m1_set_input(&ctx, 1, x, sizeof x), EDGEC_ERR_INDEX);
  EXPECT(m1_set_input(&ctx, -1, x, sizeof x), EDGEC_ERR_INDEX);
  EXPECT(m1_set_input(&ctx, 0, x, sizeof x - 4), EDGEC_ERR_SIZE);
  EXPECT(m1_set_input(&ctx, 0, NULL, sizeof x), EDGEC_ERR_NULL);
  EXPECT(m1_set_input(&ctx, 0, x, sizeof x), EDGEC_OK);
  EXPECT(m1_run(&ctx), EDGEC_OK);
  EXPECT(m1_get_output(&ctx, 0, y, sizeof y + 4), EDGEC_ERR_SIZE);
  EXPECT(m1_get_output(&ctx, 0, y, sizeof y), EDGEC_OK);
  for (int i = 0; i < 6; ++i) if (y[i] != (x[i] > 0 ? x[i] : 0)) { printf("FAIL m1 y[%d]=%g\n", i, y[i]); failures++; }
  EXPECT(m1_verify_weights(), EDGEC_OK);
  /* The second model, same program: its own symbols, its own arena; a ctx of m1 is refused. */
  EXPECT(m2_run(&ctx), EDGEC_ERR_STATE);
  EXPECT(m2_init(&ctx2, arena2, sizeof arena2, 1), EDGEC_OK);
  memcpy(m2_input_ptr(&ctx2, 0), x, sizeof x);                 /* zero-copy input */
  EXPECT(m2_run(&ctx2), EDGEC_OK);
  const float *z = (const float *)m2_output_ptr(&ctx2, 0);
  for (int i = 0; i < 6; ++i) if (z[i] != x[i] * 2.0f + 1.0f) { printf("FAIL m2 z[%d]=%g\n", i, z[i]); failures++; }
  EXPECT(m2_verify_weights(), EDGEC_OK);
  printf("%d failures\n", failures);
  return failures != 0;
}
"""


@pytest.mark.parametrize("device", ["host", "rpi4", "rpi3"])
def test_status_codes_and_two_models(tmp_path: Path, device: str) -> None:
    m1 = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", T.FLOAT, [2, 3])], [("y", T.FLOAT, [2, 3])])
    m2 = make_model([helper.make_node("Mul", ["x", "two"], ["t"]), helper.make_node("Add", ["t", "one"], ["y"])],
                    [("x", T.FLOAT, [2, 3])], [("y", T.FLOAT, [2, 3])],
                    {"two": np.array(2, np.float32), "one": np.array(1, np.float32)})
    b1 = edgec.build(m1, device=device, out_dir=tmp_path / "m1", name="m1")
    b2 = edgec.build(m2, device=device, out_dir=tmp_path / "m2", name="m2")
    (tmp_path / "t.c").write_text(C_TEST)
    profile = get_profile(device)
    tc = find_toolchain(profile)
    tc.link_executable("t", ["t.c", str(b1.static_library), str(b2.static_library)], tmp_path,
                       [str(b1.path / "include"), str(b2.path / "include")], static=device != "host")
    proc = run_binary(profile, [str(tmp_path / "t")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
    assert b"0 failures" in proc.stdout


def test_runtime_needs_no_libc(tmp_path: Path) -> None:
    """Generated code and runtime reference no libc/libm symbol (freestanding)."""
    from elftools.elf.elffile import ELFFile

    m = make_model([helper.make_node("Exp", ["x"], ["a"]), helper.make_node("Tanh", ["a"], ["b"]),
                    helper.make_node("Erf", ["b"], ["y"])], [("x", T.FLOAT, [4, 300])], [("y", T.FLOAT, [4, 300])])
    b = edgec.build(m, device="rpi3", out_dir=tmp_path / "b")
    undefined = set()
    for obj in (b.path / "obj").glob("*.o"):
        with obj.open("rb") as f:
            for sym in ELFFile(f).get_section_by_name(".symtab").iter_symbols():
                if sym["st_shndx"] == "SHN_UNDEF" and sym.name:
                    undefined.add(sym.name)
    assert undefined <= {"model_weights"}, undefined

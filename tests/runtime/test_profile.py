"""Per-layer profiling (`edgec build --profile`, docs/profiling.md): the table the generated
graph function fills, read through the Python runner and the C API, and a build without
--profile that carries no trace of it."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile

import edgec
from edgec.errors import EdgecError, RunError
from edgec.packager import read_manifest
from edgec.targets import get_profile
from edgec.toolchain import find_toolchain, run_binary
from tests.runtime.conv_net import CONV_MACS, conv_net

RUNTIME_C = Path(edgec.__file__).parent / "runtime_c"
X = {"x": np.random.default_rng(1).standard_normal((1, 3, 16, 16)).astype(np.float32)}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("profile")
    m = conv_net()
    return {"profiled": edgec.build(m, device="host", out_dir=root / "profiled", profile=True).path,
            "plain": edgec.build(m, device="host", out_dir=root / "plain").path}


def kernel_symbols(obj: Path) -> list[str]:
    """The kernels a kernels object defines (`model_k<step>_<op>`), in step order."""
    with obj.open("rb") as f:
        names = [s.name for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols()
                 if s["st_shndx"] != "SHN_UNDEF" and re.fullmatch(r"model_k\d+_[a-z0-9]+", s.name)]
    return sorted(names, key=lambda n: int(n.split("_")[1][1:]))


def undefined(obj: Path) -> set[str]:
    with obj.open("rb") as f:
        return {s.name for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols()
                if s["st_shndx"] == "SHN_UNDEF" and s.name}


def test_profile_table_on_host(bundles: dict[str, Path]) -> None:
    """One row per kernel of the kernels object, calls == runs, and the kernels' summed time
    is positive and within the wall time of the runs; MACs per layer as the model says."""
    layers = read_manifest(bundles["profiled"])["profile"]["layers"]
    assert [x["symbol"] for x in layers] == kernel_symbols(bundles["profiled"] / "obj" / "model_kernels.o")
    macs: dict[str, int] = {}
    for x in layers:
        macs[x["name"]] = macs.get(x["name"], 0) + x["macs"]
    assert {k: v for k, v in macs.items() if v} == CONV_MACS
    r = edgec.load(bundles["profiled"])
    assert all(row["calls"] == 0 and row["ticks"] == 0 for row in r.profile())  # init zeroes the table
    want = edgec.load(bundles["plain"]).run(X)["y"]
    r.run(X)
    r.reset_profile()
    runs = 25
    t0 = time.perf_counter()
    for _ in range(runs):
        got = r.run(X)["y"]
    wall = time.perf_counter() - t0
    prof = r.profile()
    assert len(prof) == len(layers) and [p["name"] for p in prof] == [x["name"] for x in layers]
    assert all(p["calls"] == runs for p in prof)
    total = sum(p["seconds"] for p in prof)
    assert 0 < total <= wall, (total, wall)
    np.testing.assert_array_equal(got, want)  # the same kernels: bit-identical outputs


def test_build_without_profile_has_no_trace_of_it(bundles: dict[str, Path]) -> None:
    """No timer instruction, no profile sources or API, the manifest as before; the profiled
    build's arena is the plain one plus the table (64-byte aligned, 16 bytes per kernel)."""
    plain, prof = (read_manifest(bundles[k]) for k in ("plain", "profiled"))
    assert "profile" not in plain and "profile" not in plain["build_options"]
    assert prof["build_options"]["profile"] is True
    for rel in ("include/edgec_profile.h", "src/edgec_profile.c"):
        assert not (bundles["plain"] / rel).exists() and (bundles["profiled"] / rel).is_file()
    assert "profile" not in (bundles["plain"] / "include" / "model.h").read_text().lower()
    assert "profile" not in (bundles["plain"] / "src" / "model_model.c").read_text().lower()
    n = len(prof["profile"]["layers"])
    assert prof["arena_bytes"] == -(-plain["arena_bytes"] // 64) * 64 + 16 * n
    assert prof["profile"]["table_offset"] == prof["arena_bytes"] - 16 * n

    def rdtsc(b: Path) -> int:
        asm = subprocess.run(["objdump", "-d", str(b / "obj" / "model_kernels.o")], capture_output=True,
                             text=True, check=True).stdout
        return len(re.findall(r"\brdtsc\b", asm))

    assert rdtsc(bundles["plain"]) == 0
    assert rdtsc(bundles["profiled"]) == n + 1  # one before the first kernel, one after each
    assert undefined(bundles["profiled"] / "obj" / "model_kernels.o") <= {"model_weights"}  # no libc
    with pytest.raises(RunError, match="built without --profile"):
        edgec.load(bundles["plain"]).profile()


def test_profile_refused_for_phones(tmp_path: Path) -> None:
    with pytest.raises(EdgecError, match="--profile is not supported for Android/iOS"):
        edgec.build(conv_net(), device="android-arm64", out_dir=tmp_path / "b", profile=True)


def test_runtime_magic_matches() -> None:
    """edgec_profile.c checks a ctx with the runtime's magic value (it cannot see the define)."""
    def magic(name: str, macro: str) -> str:
        return re.search(rf"#define {macro} (0x[0-9A-Fa-f]+u)", (RUNTIME_C / name).read_text()).group(1)

    assert magic("edgec_profile.c", "EDGEC_PROFILE_CTX_MAGIC") == magic("edgec_runtime.c", "EDGEC_CTX_MAGIC")


C_TEST = r"""
#include <stdio.h>
#include <string.h>
#include "model.h"

static unsigned char arena[MODEL_ARENA_BYTES] __attribute__((aligned(64)));
static edgec_profile_entry rows[MODEL_PROFILE_KERNELS];
static int failures = 0;
#define EXPECT(call, want) do { edgec_status s_ = (call); if (s_ != (want)) { \
  printf("FAIL line %d: %s -> %s\n", __LINE__, #call, edgec_status_str(s_)); failures++; } } while (0)

int main(void) {
  edgec_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  EXPECT(model_profile(&ctx, rows, MODEL_PROFILE_KERNELS), EDGEC_ERR_STATE);
  memset(arena, 0xAB, sizeof arena);  /* init must zero the table itself */
  EXPECT(model_init(&ctx, arena, sizeof arena, 1), EDGEC_OK);
  for (int r = 0; r < 3; ++r) EXPECT(model_run(&ctx), EDGEC_OK);
  EXPECT(model_profile(&ctx, rows, MODEL_PROFILE_KERNELS - 1), EDGEC_ERR_SIZE);
  EXPECT(model_profile(&ctx, NULL, MODEL_PROFILE_KERNELS), EDGEC_ERR_NULL);
  EXPECT(model_profile(&ctx, rows, MODEL_PROFILE_KERNELS), EDGEC_OK);
  unsigned long long ticks = 0;
  for (int k = 0; k < MODEL_PROFILE_KERNELS; ++k) {
    if (rows[k].calls != 3) { printf("FAIL kernel %d: %llu calls\n", k, (unsigned long long)rows[k].calls); failures++; }
    ticks += rows[k].ticks;
  }
  if (ticks == 0) { printf("FAIL no ticks\n"); failures++; }
  if (model_profile_ticks_per_second() == 0) { printf("FAIL ticks per second unknown\n"); failures++; }
  EXPECT(model_profile_reset(&ctx), EDGEC_OK);
  EXPECT(model_profile(&ctx, rows, MODEL_PROFILE_KERNELS), EDGEC_OK);
  for (int k = 0; k < MODEL_PROFILE_KERNELS; ++k) if (rows[k].calls || rows[k].ticks) failures++;
  EXPECT(model_deinit(&ctx), EDGEC_OK);
  EXPECT(model_profile(&ctx, rows, MODEL_PROFILE_KERNELS), EDGEC_ERR_STATE);
  printf("%d kernels, timer %d, %d failures\n", MODEL_PROFILE_KERNELS, (int)model_profile_info.timer, failures);
  return failures != 0;
}
"""


@pytest.mark.parametrize("device", ["host", "rpi3"])
def test_profile_c_api(tmp_path: Path, device: str) -> None:
    """The C API on x86-64 (rdtsc) and armv7 under qemu-arm (clock_gettime through the runtime:
    the generated code's only outside symbol besides the weights)."""
    b = edgec.build(conv_net(), device=device, out_dir=tmp_path / "b", profile=True)
    if device == "rpi3":
        assert undefined(b.path / "obj" / "model_kernels.o") == {"model_weights", "edgec_profile_now"}
        with pytest.raises(RunError, match="edgec bench --profile"):  # not in this process: qemu
            edgec.load(b.path).profile()
    (tmp_path / "t.c").write_text(C_TEST)
    profile = get_profile(device)
    find_toolchain(profile).link_executable("t", ["t.c", str(b.static_library)], tmp_path,
                                            [str(b.path / "include")], static=device != "host")
    proc = run_binary(profile, [str(tmp_path / "t")], cwd=tmp_path, timeout=120)
    out = proc.stdout.decode()
    assert proc.returncode == 0, out + proc.stderr.decode()
    timer = {"host": 2, "rpi3": 0}[device]  # EDGEC_TIMER_TSC, EDGEC_TIMER_CLOCK
    assert f"timer {timer}, 0 failures" in out

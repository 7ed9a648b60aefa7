"""`--precision fp16` in an Android bundle (issue 18, scope 5): the arm64 slice of
android-arm64-dotprod (ARMv8.2, fp16 arithmetic) computes in fp16, the armv7 slice (no fp16
arithmetic) in fp32, one bundle. Each slice's static library runs under qemu-user with a glibc
driver and is compared with onnxruntime's fp32 results."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

import edgec
from edgec.errors import EdgecError
from tests.helpers import run_onnxruntime
from tests.mobile.conftest import ANDROID_TOOLS, needs, tools_missing
from tests.mobile.test_android import _conv_model
from tests.mobile.test_android_threads import DRIVER_C, RUN

pytestmark = needs(*ANDROID_TOOLS, "qemu-aarch64")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("android-fp16") / "b"
    edgec.build(_conv_model(), device="android-arm64-dotprod,android-armv7", out_dir=out, precision="fp16")
    return out


@pytest.mark.parametrize("abi,precision,tol", [("arm64-v8a", "fp16", 4e-3), ("armeabi-v7a", "fp32", 1e-4)])
def test_slices_under_qemu(bundle: Path, tmp_path: Path, abi: str, precision: str, tol: float) -> None:
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["build_options"]["precision"] == "fp16"
    assert {s["abi"]: s["precision"] for s in m["slices"]}[abi] == precision
    cc, wrapper = RUN[abi]
    if abi == "armeabi-v7a" and tools_missing("qemu-arm"):
        pytest.skip("qemu-arm not installed")
    flags = ("-march=armv7-a", "-mfloat-abi=softfp", "-mfpu=neon") if abi == "armeabi-v7a" else ()
    (tmp_path / "driver.c").write_text(DRIVER_C)
    subprocess.run([cc, *flags, "-O1", "-I", str(bundle / "include"), "driver.c",
                    str(bundle / "lib" / abi / "libmodel.a"), "-lpthread", "-o", "driver"],
                   cwd=tmp_path, check=True, capture_output=True)
    x = np.random.default_rng(5).standard_normal((1, 16, 14, 14)).astype(np.float32)
    proc = subprocess.run([*wrapper, str(tmp_path / "driver"), "1"], input=x.tobytes(), capture_output=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr[-400:]
    [want] = run_onnxruntime(_conv_model(), {"x": x})
    got = np.frombuffer(proc.stdout, np.float32).reshape(want.shape)
    assert np.abs(got - want).max() <= tol * max(1.0, float(np.abs(want).max()))
    if precision == "fp32":
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_no_fp16_slice_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(EdgecError, match="no half-precision arithmetic"):
        edgec.build(_conv_model(), device="android-arm64,android-armv7", out_dir=tmp_path / "b", precision="fp16")

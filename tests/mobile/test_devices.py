"""Phone device profiles and bad input: unknown ABIs, devices that cannot share a bundle, and a
kernel that needs something a freestanding phone library cannot provide. Each is one clear
error, exit code 2 from the CLI, and no half-written bundle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import onnx
import pytest

import edgec
from edgec.codegen import kernel
from edgec.codegen.mathfn import c
from edgec.errors import DeviceError, ModelError
from edgec.kernels.generic.elementwise import emit_elementwise
from edgec.packager.mobile import resolve_devices
from edgec.targets import get_profile
from tests.mobile.conftest import ANDROID_TOOLS, IOS_TOOLS, needs, tanh_model

PHONES = {  # name: (triple, arch, float ABI, slice dir, object format)
    "android-arm64": ("aarch64-linux-android24", "aarch64", "hard", "arm64-v8a", "elf"),
    "android-arm64-dotprod": ("aarch64-linux-android24", "aarch64", "hard", "arm64-v8a", "elf"),
    "android-armv7": ("armv7a-linux-androideabi24", "armv7", "softfp", "armeabi-v7a", "elf"),
    "android-x86_64": ("x86_64-linux-android24", "x86_64", "hard", "x86_64", "elf"),
    "ios-arm64": ("arm64-apple-ios14.0", "aarch64", "hard", "ios-arm64", "macho"),
    "ios-arm64-simulator": ("arm64-apple-ios14.0-simulator", "aarch64", "hard", "ios-arm64-simulator", "macho"),
    "ios-x86_64-simulator": ("x86_64-apple-ios14.0-simulator", "x86_64", "hard", "ios-x86_64-simulator", "macho"),
}


@pytest.mark.parametrize("name", list(PHONES))
def test_profiles(name: str) -> None:
    p = get_profile(name)
    assert (p.triple, p.arch, p.float_abi, p.abi, p.object_format) == PHONES[name]
    assert p.pointer_bits == (32 if p.arch == "armv7" else 64)
    assert p.min_os == ("24" if name.startswith("android") else "14.0")
    assert "+dotprod" in get_profile("android-arm64-dotprod").features
    assert "-mfloat-abi=softfp" in get_profile("android-armv7").cc_flags
    assert "-ffixed-x18" in get_profile("android-arm64").cc_flags


def test_ordinary_devices_are_not_phone_bundles() -> None:
    assert resolve_devices("host") is None and resolve_devices("rpi4") is None


@pytest.mark.parametrize("spec,needle", [
    ("android-mips", "mips was removed from the NDK in r17"),
    ("android-armeabi", "armeabi (ARMv5/v6) was removed"),
    ("android-x86", "32-bit x86"),
    ("android-foo", "unknown Android ABI/device 'android-foo'"),
    ("arm64-v8a", "is an Android ABI, not a device; use --device android-arm64"),
    ("armeabi-v7a,android-arm64", "use --device android-armv7"),
    ("ios-watch", "unknown iOS device 'ios-watch'"),
    ("android-arm64,ios-arm64", "conflicting devices: android-arm64 (Android) and ios-arm64 (iOS)"),
    ("android-arm64,android-arm64-dotprod", "both build the arm64-v8a ABI"),
    ("android-armv7,android-armv7", "are the same device"),
    ("rpi4,android-arm64", "only Android and iOS devices combine into one bundle"),
    ("rpi4,rpi3", "only Android and iOS devices combine"),
    ("android-arm64,", "empty device name"),
])
def test_bad_device_lists(spec: str, needle: str, tmp_path: Path) -> None:
    with pytest.raises(DeviceError) as exc:
        edgec.build(tanh_model(), device=spec, out_dir=tmp_path / "out")
    assert needle in str(exc.value)
    assert not (tmp_path / "out").exists()


def test_cli_conflicting_devices(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    onnx.save(tanh_model(), model)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "edgec.cli", "build", str(model), "--device",
                           "android-arm64,ios-arm64-simulator", "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "conflicting devices" in proc.stderr and not out.exists()


@pytest.fixture()
def kernel_needing_libm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tanh lowered with `frem`, which LLVM turns into a call to libm's fmodf: a kernel that
    needs a library function the freestanding phone libraries do not have."""
    def lower(kc: kernel.KernelContext) -> None:
        emit_elementwise(kc, kc.inputs, kc.outputs[0], lambda v: kc.b.frem(v[0], c(v[0], 0.75)))

    monkeypatch.setitem(kernel.LOWERINGS, "Tanh", lower)
    monkeypatch.setitem(kernel.LOWERINGS, "FusedElementwise", lower)  # Mul + Tanh run as one loop


@pytest.mark.parametrize("device", [
    pytest.param("ios-arm64", marks=needs(*IOS_TOOLS)),
    pytest.param("android-arm64,android-armv7", marks=needs(*ANDROID_TOOLS)),
])
def test_kernel_needing_libm_is_a_clear_error(kernel_needing_libm: None, device: str, tmp_path: Path) -> None:
    with pytest.raises(ModelError) as exc:
        edgec.build(tanh_model(), device=device, out_dir=tmp_path / "out")
    msg = str(exc.value)
    assert "fmodf" in msg and "an op in this model needs a library function or CPU feature" in msg
    assert msg.startswith(device.split(",")[0] + ":")
    assert not (tmp_path / "out").exists() and not list(tmp_path.iterdir())

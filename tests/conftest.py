"""Shared test fixtures. ARM tests need the cross gcc and qemu-user (`.ci/run` installs them)."""

from __future__ import annotations

import shutil

import pytest

ARM_TOOLS = {"rpi4": ("aarch64-linux-gnu-gcc", "qemu-aarch64"), "rpi3": ("arm-linux-gnueabihf-gcc", "qemu-arm")}


def arm_available(device: str) -> bool:
    return all(shutil.which(t) for t in ARM_TOOLS[device])


def pytest_collection_modifyitems(config, items):  # noqa: ANN001
    """Tests parametrized over `device` run ARM devices under qemu; skip them (with the reason)
    only where the cross tools are missing."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        dev = callspec.params.get("device") if callspec else None
        if dev in ARM_TOOLS:
            item.add_marker(pytest.mark.arm)
            if not arm_available(dev):
                tools = " and ".join(ARM_TOOLS[dev])
                item.add_marker(pytest.mark.skip(reason=f"{tools} not installed (apt-get install "
                                                        "gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf qemu-user)"))


@pytest.fixture(scope="session", autouse=True)
def _object_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Builds in the tests use a cache of their own (per test process), never the user's
    ~/.cache/edgec: a test run neither reads objects another run left nor fills the home dir."""
    import os

    if "EDGEC_CACHE_DIR" not in os.environ:
        os.environ["EDGEC_CACHE_DIR"] = str(tmp_path_factory.mktemp("edgec-objects"))

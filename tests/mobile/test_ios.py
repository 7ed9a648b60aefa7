"""iOS bundles, checked with a Mach-O parser (macholib): CPU type, LC_BUILD_VERSION platform
(IOS vs IOS_SIMULATOR) and min OS of every object in every slice, exported symbols and the
darwin archive symbol table, the xcframework's Info.plist and layout."""

from __future__ import annotations

import json
import plistlib
from pathlib import Path

import pytest

import edgec
from edgec.packager.inspect import inspect_bundle
from edgec.packager.ios import COMPILER_RT
from edgec.packager.macho import archive_symbol_table, fat_slices, macho_info, read_archive
from tests.mobile.conftest import IOS_TOOLS, multi_model, needs

pytestmark = needs(*IOS_TOOLS)
DEVICES = "ios-arm64,ios-arm64-simulator,ios-x86_64-simulator"
# slice -> (cpu, LC_BUILD_VERSION platform)
EXPECT = {"ios-arm64": ("arm64", "ios"), "ios-arm64-simulator": ("arm64", "ios-simulator"),
          "ios-x86_64-simulator": ("x86_64", "ios-simulator")}
API = {"_model_init", "_model_run", "_model_set_input", "_model_get_output", "_model_input_ptr",
       "_model_output_ptr", "_model_info", "_edgec_init", "_edgec_status_str"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return edgec.build(multi_model(), device=DEVICES, out_dir=tmp_path_factory.mktemp("ios") / "b").path


def _check_archive(data: bytes, cpu: str, platform: str) -> None:
    members = read_archive(data)
    assert sorted(n for n, _ in members) == ["edgec_runtime.o", "model_kernels.o", "model_model.o",
                                             "model_weights.o"]
    defined: set[str] = set()
    undefined: set[str] = set()
    for name, obj in members:
        info = macho_info(obj, name)
        assert (info["machine"], info["platform"], info["min_os"], info["filetype"]) == \
            (cpu, platform, "14.0", "object"), name
        defined |= set(info["exported"]) | set(info["hidden"])
        undefined |= set(info["undefined"])
        exported = set(info["exported"])
        if name == "model_weights.o":
            assert "_model_weights" in info["hidden"] and not exported  # internal to the library
    assert API <= defined
    assert undefined - defined <= COMPILER_RT, undefined - defined
    # Apple's linker finds members through the darwin `__.SYMDEF` table.
    assert API <= set(archive_symbol_table(data))


@pytest.mark.parametrize("slice_name", list(EXPECT))
def test_slice_static_library(bundle: Path, slice_name: str) -> None:
    cpu, platform = EXPECT[slice_name]
    _check_archive((bundle / "lib" / slice_name / "libmodel.a").read_bytes(), cpu, platform)


def test_xcframework(bundle: Path) -> None:
    xcf = bundle / "ios" / "EdgecModel.xcframework"
    plist = plistlib.loads((xcf / "Info.plist").read_bytes())
    assert plist["CFBundlePackageType"] == "XFWK" and plist["XCFrameworkFormatVersion"] == "1.0"
    libs = {lib["LibraryIdentifier"]: lib for lib in plist["AvailableLibraries"]}
    assert set(libs) == {"ios-arm64", "ios-arm64_x86_64-simulator"}
    assert libs["ios-arm64"]["SupportedArchitectures"] == ["arm64"]
    assert "SupportedPlatformVariant" not in libs["ios-arm64"]
    sim = libs["ios-arm64_x86_64-simulator"]
    assert sim["SupportedArchitectures"] == ["arm64", "x86_64"] and sim["SupportedPlatformVariant"] == "simulator"
    for ident, lib in libs.items():
        assert lib["SupportedPlatform"] == "ios"
        d = xcf / ident
        assert (d / lib["LibraryPath"]).is_file()
        headers = d / lib["HeadersPath"]
        assert {p.name for p in headers.iterdir()} == {"model.h", "edgec_runtime.h", "module.modulemap"}
        mm = (headers / "module.modulemap").read_text()
        assert "module EdgecModel {" in mm and 'header "model.h"' in mm
    _check_archive((xcf / "ios-arm64" / "libmodel.a").read_bytes(), "arm64", "ios")
    fat = fat_slices((xcf / "ios-arm64_x86_64-simulator" / "libmodel.a").read_bytes())
    assert set(fat) == {"arm64", "x86_64"}
    for cpu, data in fat.items():
        _check_archive(data, cpu, "ios-simulator")


def test_swift_wrapper_and_manifest(bundle: Path) -> None:
    swift = (bundle / "ios" / "Swift" / "Model.swift").read_text()
    assert "import EdgecModel" in swift and "public final class Model" in swift
    for api in ("public static func load(", "public func run(_ input: [Float]) throws -> [Float]",
                "public func run(_ inputs: [Data]) throws -> [Data]", "public func close()",
                'TensorInfo(name: "l", dtype: "int64", shape: [4], bytes: 32)'):
        assert api in swift, api
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["devices"] == DEVICES.split(",") and m["platform"] == "ios"
    assert [(s["abi"], s["platform"], s["min_os"]) for s in m["slices"]] == \
        [(k, v[1], "14.0") for k, v in EXPECT.items()]


def test_inspect_reports_macho(bundle: Path) -> None:
    info = inspect_bundle(bundle)
    assert [(s["abi"], s["machine"], s["platform"], s["min_os"]) for s in info["slices"]] == \
        [(k, *v, "14.0") for k, v in EXPECT.items()]
    k = info["objects"]["obj/ios-arm64-simulator/model_kernels.o"]
    assert k["format"] == "mach-o" and k["sections"][".text"] > 0 and "_model_graph_run" in k["exported"]
    for row in info["sizes"]:
        assert row["code"] > 0 and row["weights"] >= info["weight_bytes"] and 0 < row["runtime_text"] <= 10240


def test_reproducible(bundle: Path, tmp_path: Path) -> None:
    again = edgec.build(multi_model(), device=DEVICES, out_dir=tmp_path / "again").path
    files = sorted(p.relative_to(bundle) for p in bundle.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (bundle / rel).read_bytes() == (again / rel).read_bytes(), f"{rel} differs"


def test_device_only_bundle(tmp_path: Path) -> None:
    """One slice: the xcframework has one library, no lipo."""
    b = edgec.build(multi_model(), device="ios-x86_64-simulator", out_dir=tmp_path / "b").path
    plist = plistlib.loads((b / "ios/EdgecModel.xcframework/Info.plist").read_bytes())
    [lib] = plist["AvailableLibraries"]
    assert lib["LibraryIdentifier"] == "ios-x86_64-simulator" and lib["SupportedArchitectures"] == ["x86_64"]
    _check_archive((b / "ios/EdgecModel.xcframework/ios-x86_64-simulator/libmodel.a").read_bytes(),
                   "x86_64", "ios-simulator")

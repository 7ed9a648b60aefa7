"""edgec as a user gets it from `pip install edgec`: a wheel of this repository installed into a
fresh venv, run through the venv's `edgec` script from a directory outside the repository.
`edgec build`, `edgec bench --local` and `edgec tune --device local` must work from the wheel
alone (the C runtime and the bench harness are package data), and the bundle it builds must be
byte-identical to the source tree's.

The venv sees the system's site-packages for edgec's dependencies (numpy, llvmlite, xgboost...),
which also hold this checkout's editable install: the test checks that the venv's edgec is the
wheel's copy, never the source tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

import edgec
from edgec.tune.log import read_log
from tests.tune.conftest import small_model

REPO = Path(__file__).resolve().parents[2]
# What setuptools needs to build the wheel: the root files (pyproject.toml, README, ...) and the
# package. Copied so that a build leaves no build/ or *.egg-info in the checkout.
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")


def _run(argv: list[str | Path], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}\nstdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


def _files(bundle: Path) -> dict[str, bytes]:
    return {str(f.relative_to(bundle)): f.read_bytes() for f in sorted(bundle.rglob("*")) if f.is_file()}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """(venv dir, environment to run its programs with): the wheel built and installed."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for f in REPO.iterdir():
        if f.is_file():
            shutil.copy2(f, src / f.name)
    shutil.copytree(REPO / "edgec", src / "edgec", ignore=_IGNORE)

    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")}
    env |= {"PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_INPUT": "1", "EDGEC_CONFIG_DIR": str(root / "config"),
            "EDGEC_KNOWN_HOSTS": str(root / "known_hosts")}
    env.pop("EDGEC_DEBUG", None)
    dist = root / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, src],
         root, env)
    wheels = list(dist.glob("edgec-*.whl"))
    assert len(wheels) == 1, wheels

    venv = root / "venv"
    # --system-site-packages: the dependencies come from the system (no download); pip too, so
    # the venv needs none of its own. --ignore-installed: install into the venv even though the
    # system has edgec (editable) installed, and never touch that install.
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], root, env)
    py = venv / "bin" / "python"
    _run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", wheels[0]],
         root, env)
    return venv, env


def test_wheel_build_bench_tune(venv: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    vdir, env = venv
    work = tmp_path / "work"  # the working directory: not the repository
    work.mkdir()
    exe = vdir / "bin" / "edgec"
    assert exe.is_file()

    # The venv's edgec is the wheel's copy (not the checkout, whose editable finder is on the
    # system site-packages path), and it carries the runtime and the bench harness.
    probe = _run([vdir / "bin" / "python", "-c",
                  "import json, sys, edgec; from edgec.device.bench import HARNESS_SOURCE; "
                  "print(json.dumps([edgec.__file__, str(HARNESS_SOURCE), sys.path]))"], work, env)
    pkg_file, harness, path = json.loads(probe.stdout.splitlines()[-1])
    venv_real = vdir.resolve()
    assert Path(pkg_file).resolve().is_relative_to(venv_real), pkg_file
    assert Path(harness).resolve().is_relative_to(venv_real) and Path(harness).is_file(), harness
    assert not any(p and Path(p).resolve() == REPO for p in path), path

    model = work / "small.onnx"
    onnx.save(small_model(), model)

    # build
    _run([exe, "build", model.name, "--device", "host", "-o", "out"], work, env)
    manifest = json.loads((work / "out" / "manifest.json").read_text())
    assert manifest["device"] == "host"
    # The wheel's edgec builds the bundle the source tree builds, byte for byte.
    ref = tmp_path / "ref" / "small.onnx"
    ref.parent.mkdir()
    shutil.copyfile(model, ref)
    edgec.build(ref, device="host", out_dir=tmp_path / "ref" / "out")
    assert _files(work / "out") == _files(tmp_path / "ref" / "out")

    # bench: the harness from the package, compiled and run on this machine
    proc = _run([exe, "bench", "out", "--local", "--runs", "20", "--warmup", "2", "--json"], work, env)
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    assert stats["device"] == "local" and stats["runs"] >= 20, stats
    assert 0 < stats["min_us"] <= stats["median_us"] <= stats["max_us"], stats
    assert stats["checksum"].startswith("fnv1a64:"), stats

    # tune: one task (the biggest), 4 configs, each built with the packaged harness and measured
    log = work / "tune.jsonl"
    _run([exe, "tune", model.name, "--device", "local", "--trials", "4", "--max-tasks", "1", "--batch", "4",
          "--min-time", "0.01", "--log", log.name], work, env)
    recs = read_log(log)
    assert len(recs) == len(log.read_text().splitlines()) == 4, recs
    assert len({r["config"]["index"] for r in recs}) == 4
    ok = [r for r in recs if r["result"]["error"] is None]
    assert ok and all(r["result"]["costs_s"][0] > 0 for r in ok), recs

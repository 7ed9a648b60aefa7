"""The fuzz harness cannot pass silently: known-bad behaviours (an escaping exception, a
segfault, a hang, a CLI traceback, a payload that ran, a deleted user file, a foreign export,
outputs that differ, a tampered bundle that runs) are each classified as the failure they are."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest

import edgec
from edgec.errors import EdgecError, InternalError, ModelError
from tests.fuzz import campaign
from tests.fuzz.bundle_cases import make_bundle_case
from tests.fuzz.campaign import make_case, run_case
from tests.fuzz.core import (
    MARKER,
    MARKER_CMD,
    Case,
    Result,
    run_cli,
    run_forked,
    snapshot,
    snapshot_problem,
)
from tests.fuzz.oracle import compare, foreign_exports, model_oracle
from tests.fuzz.seeds import make_seed


def _raise(exc: BaseException) -> Result:
    raise exc


@pytest.mark.parametrize(
    "exc, cls, reason",
    [
        (ValueError("boom"), "traceback", "harness"),  # raised outside edgec: still a traceback
        (ModelError("bad model"), "clean_error", ""),
        (EdgecError("out of memory (the model is too large)"), "traceback", "memory_error"),
        (InternalError("internal error: KeyError: 'x'"), "traceback", "internal_error"),
        (SystemExit(0), "traceback", "harness"),
    ],
)
def test_exceptions(tmp_path: Path, exc: BaseException, cls: str, reason: str) -> None:
    res = run_forked(lambda: _raise(exc), 20, tmp_path)
    assert (res.cls, res.reason) == (cls, reason), res


def test_exception_inside_edgec_is_a_traceback(tmp_path: Path) -> None:
    from edgec.cli_args import output_file_names

    res = run_forked(lambda: output_file_names(None), 20, tmp_path)  # type: ignore[arg-type]
    assert res.cls == "traceback" and res.reason == "TypeError", res


def test_crash_hang_and_silent_exit(tmp_path: Path) -> None:
    res = run_forked(lambda: os.kill(os.getpid(), signal.SIGSEGV), 20, tmp_path)  # type: ignore[func-returns-value]
    assert (res.cls, res.reason) == ("crash", "SIGSEGV"), res
    res = run_forked(lambda: os.abort(), 20, tmp_path)  # type: ignore[func-returns-value]
    assert (res.cls, res.reason) == ("crash", "SIGABRT"), res
    t0 = time.monotonic()
    res = run_forked(lambda: time.sleep(30), 1.0, tmp_path)  # type: ignore[func-returns-value]
    assert res.cls == "hang" and time.monotonic() - t0 < 10, res
    res = run_forked(lambda: os._exit(0), 20, tmp_path)  # type: ignore[func-returns-value]
    assert (res.cls, res.reason) == ("traceback", "no_result"), res
    assert run_forked(lambda: Result("ok"), 20, tmp_path).cls == "ok"


def test_hang_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"

    def spawn() -> Result:
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        pidfile.write_text(str(p.pid))
        p.wait()
        return Result("ok")

    assert run_forked(spawn, 2.0, tmp_path).cls == "hang"
    pid = int(pidfile.read_text())
    time.sleep(0.2)
    assert (
        not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    )


def _stub(code: str, tmp_path: Path, timeout: float = 20) -> Result:
    return run_cli([], tmp_path, timeout, argv0=[sys.executable, "-c", code])[0]


@pytest.mark.parametrize(
    "code, cls, reason",
    [
        ("raise ValueError('x')", "traceback", "traceback_in_stderr"),
        (
            "import sys; print('Traceback (most recent call last):', file=sys.stderr); sys.exit(2)",
            "traceback",
            "traceback_in_stderr",
        ),
        ("import sys; print('error: bad input', file=sys.stderr); sys.exit(2)", "clean_error", ""),
        ("import sys; print('error: failed', file=sys.stderr); sys.exit(1)", "clean_error", ""),
        ("import sys; sys.exit(3)", "traceback", "exit_3"),
        (
            "import sys; print('error: internal error: KeyError', file=sys.stderr); sys.exit(1)",
            "traceback",
            "internal_error",
        ),
        (
            "import sys; print('x\\n' * 50, file=sys.stderr); sys.exit(2)",
            "traceback",
            "long_stderr",
        ),
        ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", "crash", "SIGSEGV"),
        ("import os, sys; sys.exit(5 if os.environ.get('EDGEC_DEBUG') else 0)", "ok", ""),
    ],
)
def test_cli_classification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str, cls: str, reason: str
) -> None:
    monkeypatch.setenv("EDGEC_DEBUG", "1")  # the harness must strip it for CLI cases
    res = _stub(code, tmp_path)
    assert (res.cls, res.reason) == (cls, reason), res


def test_cli_hang(tmp_path: Path) -> None:
    assert _stub("import time; time.sleep(30)", tmp_path, timeout=1.0).cls == "hang"


def test_payload_marker_and_deleted_files_are_security(tmp_path: Path) -> None:
    def run_payload(d: Path) -> Result:
        os.system(MARKER_CMD)  # what an injected payload would do, from any cwd
        return Result("clean_error")

    case = Case("t:0", "model", "test", "payload", run_payload)
    rec = run_case(case, tmp_path)
    assert (rec.cls, rec.reason) == ("security", "payload_ran"), rec
    before: dict[str, bytes] = {}

    def prepare(d: Path) -> None:
        (d / "user").mkdir()
        (d / "user" / "keep.txt").write_text("keep")
        before.update(snapshot(d / "user"))

    def delete(d: Path) -> Result:
        (d / "user" / "keep.txt").unlink()
        return Result("clean_error")

    def check(d: Path, res: Result) -> Result:
        problem = snapshot_problem(d / "user", before)
        return Result("security", "user_files", problem) if problem else res

    rec = run_case(Case("t:1", "cli", "test", "delete", delete, prepare, check), tmp_path)
    assert (rec.cls, rec.reason) == ("security", "user_files"), rec
    assert not list(tmp_path.glob(MARKER + "*"))


def test_foreign_exports_are_found(tmp_path: Path) -> None:
    src = tmp_path / "x.c"
    src.write_text(
        "int model_run(void) { return 0; }\nint edgec_ctx_size(void) { return 1; }\n"
        "int evil(void) { return 2; }\nstatic int hidden(void) { return 3; }\n"
    )
    so = tmp_path / "libx.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(so), str(src)], check=True)
    assert foreign_exports(so, "model") == ["evil"]


def test_compare() -> None:
    a = {"y": np.array([1.0, np.nan, np.inf], np.float32)}
    assert compare(a, {"y": a["y"].copy()}, 1e-4) is None
    for other in ([1.0, 0.0, np.inf], [1.0, np.nan, -np.inf], [1.1, np.nan, np.inf]):
        assert "1 of 3 elements differ" in compare(a, {"y": np.array(other, np.float32)}, 1e-4)
    assert "float64" in compare(a, {"y": a["y"].astype(np.float64)}, 1e-4)
    assert "names" in compare(a, {"z": a["y"]}, 1e-4)
    only_first = {"y": np.array([True, False, False])}
    assert compare(a, {"y": np.array([1.0, 0.0, 0.0], np.float32)}, 1e-4, only_first) is None


def test_oracle_finds_wrong_outputs_and_accepted_invalid_models(tmp_path: Path) -> None:
    seed = make_seed("matmul_softmax")
    path = tmp_path / "m.onnx"
    onnx.save(seed.model, path)
    feeds = {"x": np.ones((2, 8), np.float32)}
    oracle = model_oracle(lambda d: path, seed.tol)
    bad = {"y": np.full((2, 5), 0.2, np.float32)}
    res = oracle(tmp_path, Result("ok", data={"feeds": feeds, "outputs": bad}))
    assert (res.cls, res.reason) == ("wrong", "mismatch"), res
    broken = onnx.ModelProto()
    broken.CopyFrom(seed.model)
    broken.graph.node[0].input[1] = "nowhere"  # refused by onnxruntime and the checker
    onnx.save(broken, path)
    res = oracle(tmp_path, Result("ok", data={"feeds": feeds, "outputs": bad}))
    assert (res.cls, res.reason) == ("wrong", "accepted_invalid"), res


class _FakeRunner:
    def run(self, feeds: dict) -> dict:
        return {"y": np.zeros((1, 3, 3, 3), np.float32)}


def test_tampered_bundle_that_runs_is_security(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import random

    monkeypatch.setattr(
        edgec, "load", lambda *a, **k: _FakeRunner()
    )  # a loader that checks nothing
    for k in range(200):
        case = make_bundle_case(random.Random(k), f"t:{k}", tmp_path)
        if case.mutation == "bundle.flip_so" and "api" in case.detail:
            break
    rec = run_case(case, tmp_path)
    assert (rec.cls, rec.reason) == ("security", "tampered_accepted"), rec


def test_edgec_bug_in_a_model_case_is_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_build(*args: object, **kwargs: object) -> None:
        raise InternalError("internal error: IndexError: list index out of range")

    monkeypatch.setattr(edgec, "build", broken_build)
    for k in range(100):
        case = make_case("classifier", k, tmp_path)
        if case.family == "model" and "via cli" not in case.detail:
            break
    rec = run_case(case, tmp_path)
    assert (rec.cls, rec.reason) == ("traceback", "internal_error"), rec


def test_cases_are_determined_by_seed_and_index(tmp_path: Path) -> None:
    for k in range(40):
        a, b = make_case(7, k, tmp_path), make_case(7, k, tmp_path)
        assert (a.family, a.mutation, a.detail) == (b.family, b.mutation, b.detail)
    assert {make_case(7, k, tmp_path).family for k in range(60)} == set(campaign.FAMILY_WEIGHTS)

"""Bad command lines: `edgec build` with hostile shapes, names, thread counts, devices,
output directories and model paths (`edgec run` cases: cli_run.py). Every command runs as
`python -m edgec.cli` without EDGEC_DEBUG, in the case's directory. Where a command must not
touch a user's files, they are snapshotted before and compared after (a difference is
"security")."""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

from tests.fuzz.bundle_cases import need
from tests.fuzz.core import MARKER, MARKER_CMD, Case, Result, run_cli, snapshot, snapshot_problem

Args = Callable[[Path], list[str]]
CLI_TIMEOUT = 50.0


def cli_case(
    case_id: str,
    mutation: str,
    detail: str,
    args: Args,
    prepare: Callable[[Path], None] | None = None,
    accept_is: str = "wrong",
    protect: str = "",
    after: Callable[[Path, str], Result | None] | None = None,
) -> Case:
    """`accept_is`: the class of exit 0 ("" when acceptance is fine); `protect`: a directory
    (relative to the case dir) whose files must survive unchanged; `after(case_dir, stdout)`:
    more checks in the child once the command succeeded."""
    before: dict[str, bytes] = {}

    def prep(d: Path) -> None:
        if prepare:
            prepare(d)
        if protect:
            before.update(snapshot(d / protect))

    def run(d: Path) -> Result:
        res, out, _ = run_cli(args(d), d, CLI_TIMEOUT)
        if res.cls != "ok":
            return res
        if accept_is:
            return Result(accept_is, "accepted_invalid", f"exit 0 for: {detail}"[:200])
        return (after(d, out) if after else None) or res

    def check(d: Path, res: Result) -> Result:
        problem = snapshot_problem(d / protect, before) if protect else None
        if problem:
            return Result("security", "user_files", problem)
        return res

    return Case(case_id, "cli", mutation, detail, run, prep, check)


def _model(root: Path) -> Callable[[Path], None]:
    def prepare(d: Path) -> None:
        shutil.copyfile(need(root).model, d / "m.onnx")

    return prepare


def _bundle(root: Path, extra: Callable[[Path], None] | None = None) -> Callable[[Path], None]:
    def prepare(d: Path) -> None:
        shutil.copytree(need(root).bundle, d / "b", symlinks=True)
        if extra:
            extra(d)

    return prepare


# Values that may be accepted: valid, or a documented leniency (a tuning log's unreadable lines
# are skipped, as after a crash mid-write).
LENIENT = {
    ("--name", "main"),
    ("--name", "a" * 63),
    ("--sparsity", "BSR"),
    ("--device", "HOST"),
    ("--tuning-log", "/etc/passwd"),
    ("--weights", ""),
}


def build_flag(rng: random.Random, case_id: str, root: Path) -> Case:
    flag, values = rng.choice(
        [
            (
                "--input-shape",
                [
                    "x=99999999999999999999999",
                    "x=a",
                    "x=-1",
                    "x=1,2,-6,6",
                    "x=",
                    "=1,2",
                    "x=1,2,6",
                    "x=1,2,2147483647,2147483647",
                    "x=1,2,0,6",
                    "y=1,2,6,6",
                    "x=1,,2",
                    "x=1.5",
                    "x\n=1",
                    "x=1,2,6,6,1,1,1,1,1",
                ],
            ),
            (
                "--name",
                [
                    "edgec",
                    "int",
                    "a" * 300,
                    "a-b",
                    "",
                    "Java_x",
                    "stdio",
                    "String",
                    "\u00ff",
                    "9x",
                    "x;rm -rf ~",
                    f"$({MARKER_CMD})",
                    "edgec_runtime",
                    "main",
                    "_Bool",
                    "a" * 64,
                    "a" * 63,
                    "time",
                ],
            ),
            ("--threads", ["abc", "0", "99", "-1", "17", "1e3", ""]),
            ("--device", ["nope", "", "host;ls", "../../etc/passwd", "HOST", "host\n", "x" * 5000]),
            ("--fast-math", ["bogus", ""]),
            ("--sparsity", ["bogus", "BSR"]),
            ("--sparse-threshold", ["nan", "-1", "inf", "x"]),
            ("--sparse-code-limit", ["-1", "x"]),
            ("--weights", ["int4", "", "fp64"]),
            ("--quantize", ["int4", "int8"]),
            ("--tuning-log", ["/etc/passwd", "nope.jsonl", "/dev/zero", "."]),
        ]
    )
    value = rng.choice(values)
    accept = "" if (flag, value) in LENIENT else "wrong"
    return cli_case(
        case_id,
        f"cli.build{flag[1:]}",
        f"build {flag} {value[:60]!r}",
        lambda d: ["build", "m.onnx", "-o", str(d / "out"), flag, value],
        _model(root),
        accept,
    )


def _user_dir(d: Path, manifest: str) -> None:
    u = d / "user"
    (u / "photos").mkdir(parents=True)
    (u / "photos" / "cat.jpg").write_bytes(b"\xff\xd8 cat")
    (u / "notes.txt").write_text("keep me")
    if manifest == "fake":
        (u / "manifest.json").write_text(
            json.dumps(
                {
                    "format_version": 1,
                    "edgec_version": "0.1.0",
                    "name": "model",
                    "files": {"notes.txt": "0" * 64},
                }
            )
        )


def build_out(rng: random.Random, case_id: str, root: Path) -> Case:
    """-o onto places edgec must not replace (the user's files must survive) or may."""
    how = rng.choice(
        [
            "proc",
            "file",
            "fake_manifest",
            "real_manifest",
            "bundle_plus_file",
            "bundle_edited",
            "bundle_ok",
            "symlink_to_user",
            "model_itself",
            "case_dir",
            "long_path",
            "bundle_symlinked_file",
        ]
    )
    model = _model(root)
    out = {
        "proc": "/proc/edgec-fuzz-out",
        "file": "user/file.txt",
        "model_itself": "m.onnx",
        "case_dir": ".",
        "long_path": "x" * 300 + "/y" * 2100,
        "symlink_to_user": "link",
    }.get(how, "user")

    def prepare(d: Path) -> None:
        model(d)
        good = need(root).bundle
        if how == "file":
            (d / "user").mkdir()
            (d / "user" / "file.txt").write_text("the user's data")
        elif how in ("fake_manifest", "symlink_to_user"):
            _user_dir(d, "fake")
            if how == "symlink_to_user":
                (d / "link").symlink_to("user")
        elif how == "real_manifest":
            _user_dir(d, "")
            shutil.copyfile(good / "manifest.json", d / "user" / "manifest.json")
        elif how.startswith("bundle"):
            shutil.copytree(good, d / "user", symlinks=True)
            if how == "bundle_plus_file":
                (d / "user" / "build").mkdir()
                (d / "user" / "build" / "CMakeCache.txt").write_text("the user's build")
            elif how == "bundle_edited":
                (d / "user" / "src" / "edgec_runtime.c").write_text("/* the user's edit */")
            elif how == "bundle_symlinked_file":
                (d / "precious.txt").write_text("outside the bundle")
                (d / "user" / "CMakeLists.txt").unlink()
                (d / "user" / "CMakeLists.txt").symlink_to(d / "precious.txt")

    accept = "" if how == "bundle_ok" else "wrong" if how in ("proc", "long_path") else "security"
    protect = {
        "bundle_ok": "",
        "proc": "",
        "long_path": "",
        "case_dir": ".",
        "model_itself": ".",
    }.get(how, "user")
    return cli_case(
        case_id,
        "cli.build_out",
        f"build -o {how}",
        lambda d: ["build", "m.onnx", "-o", out],
        prepare,
        accept,
        protect,
    )


def build_model_path(rng: random.Random, case_id: str, root: Path) -> Case:
    how = rng.choice(
        [
            "missing",
            "directory",
            "fifo",
            "dev_zero",
            "dev_null",
            "shell_name",
            "dash_name",
            "newline_name",
            "long_name",
            "symlink_loop",
            "empty",
            "json",
        ]
    )
    names = {
        "missing": "nope.onnx",
        "directory": "dir",
        "fifo": "fifo.onnx",
        "dev_zero": "/dev/zero",
        "dev_null": "/dev/null",
        "shell_name": f"m$(touch {MARKER});`touch {MARKER}`.onnx",
        "dash_name": "-rf.onnx",
        "newline_name": "m\nerror: fake line.onnx",
        "long_name": "m" * 300 + ".onnx",
        "symlink_loop": "loop.onnx",
        "empty": "empty.onnx",
        "json": "m.json",
    }
    name = names[how]
    model = _model(root)

    def prepare(d: Path) -> None:
        model(d)
        if how in ("shell_name", "dash_name", "newline_name"):
            shutil.copyfile(d / "m.onnx", d / name)
        elif how == "directory":
            (d / "dir").mkdir()
        elif how == "fifo":
            os.mkfifo(d / name)
        elif how == "symlink_loop":
            (d / name).symlink_to(name)
        elif how == "empty":
            (d / name).write_bytes(b"")
        elif how == "json":
            (d / name).write_text('{"ir_version": 8}')

    accept = "" if how in ("shell_name", "dash_name", "newline_name") else "wrong"
    return cli_case(
        case_id,
        "cli.model_path",
        f"build {how}",
        lambda d: ["build", "-o", str(d / "out"), "--", name],
        prepare,
        accept,
    )


def make_cli_case(rng: random.Random, case_id: str, root: Path) -> Case:
    from tests.fuzz.cli_run import misc, run_clash, run_input, run_output

    table: dict[str, tuple[Callable[[random.Random, str, Path], Case], int]] = {
        "build_flag": (build_flag, 5),
        "build_out": (build_out, 4),
        "build_model_path": (build_model_path, 2),
        "run_input": (run_input, 4),
        "run_output": (run_output, 2),
        "misc": (misc, 1),
        "run_clash": (run_clash, 1),
    }
    kinds = sorted(table)
    fn = rng.choices([table[k][0] for k in kinds], [table[k][1] for k in kinds])[0]
    return fn(rng, case_id, root)

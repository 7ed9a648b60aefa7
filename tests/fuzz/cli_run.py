"""Bad `edgec run` command lines: hostile input files (.npy headers claiming huge shapes or
holding Python code, pickles, empty .npz, FIFOs), output directories onto a user's files, and
output names that clash or traverse after sanitising; plus odd command lines in general."""

from __future__ import annotations

import os
import random
import zipfile
from pathlib import Path

import numpy as np

from tests.fuzz.cli_cases import CLI_TIMEOUT, _bundle, _model, cli_case
from tests.fuzz.core import MARKER, MARKER_CMD, Case, Result, run_cli


class _Evil:
    def __reduce__(self) -> tuple:
        return (os.system, (MARKER_CMD,))


# .npy inputs that hold a real array of the wrong kind (dtype, shape, layout, version, size)
_ARRAY_KINDS = ("float64", "int64", "complex", "bool", "string", "wrong_shape", "fortran",
                "truncated", "v3", "scalar", "f16")

def _npy(d: Path, how: str) -> str:
    """An input file for the good bundle's input x (float32 [1, 2, 6, 6]); returns its path."""
    p = d / "x.npy"
    good = np.zeros((1, 2, 6, 6), np.float32)
    if how == "huge_header":
        hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999), }"
        p.write_bytes(
            b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little") + hdr.encode() + bytes(64)
        )
    elif how == "eval_header":
        code = f"__import__('os').system('{MARKER_CMD}')"
        hdr = f"{{'descr': {code}, 'fortran_order': False, 'shape': (1,2,6,6), }}"
        p.write_bytes(
            b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little") + hdr.encode() + bytes(288)
        )
    elif how == "pickle":
        np.save(p, np.array([_Evil()], dtype=object), allow_pickle=True)
    elif how in _ARRAY_KINDS:
        arr = {
            "float64": good.astype(np.float64),
            "int64": good.astype(np.int64),
            "complex": good.astype(np.complex64),
            "bool": good.astype(bool),
            "string": good.astype("U3"),
            "wrong_shape": good.reshape(2, 36),
            "scalar": np.float32(1),
            "fortran": np.asfortranarray(good),
            "f16": good.astype(np.float16),
        }.get(how, good)
        np.save(p, arr)
        if how == "truncated":
            p.write_bytes(p.read_bytes()[:-10])
        elif how == "v3":
            data = bytearray(p.read_bytes())
            data[6] = 3
            p.write_bytes(bytes(data))
    elif how == "npz_empty":
        p = d / "x.npz"
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("readme.txt", "no arrays here")
    elif how == "npz_bomb":
        p = d / "x.npz"
        hdr = np.lib.format.header_data_from_array_1_0(good)
        with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z, z.open("x.npy", "w") as f:
            np.lib.format.write_array_header_1_0(f, hdr)
            for _ in range(50):
                f.write(bytes(1 << 20))
    elif how == "npz_two":
        p = d / "x.npz"
        np.savez(p, a=good, b=good)
    elif how == "garbage":
        p.write_bytes(os.urandom(300))
    elif how in ("fifo", "directory"):
        os.mkfifo(p) if how == "fifo" else p.mkdir()
    return p.name


RUN_OK = {"float64", "int64", "bool", "fortran", "f16"}  # castable and of the right shape


def run_input(rng: random.Random, case_id: str, root: Path) -> Case:
    how = rng.choice(
        [
            "huge_header",
            "eval_header",
            "pickle",
            *_ARRAY_KINDS,
            "npz_empty",
            "npz_bomb",
            "npz_two",
            "garbage",
            "fifo",
            "directory",
            "unknown_name",
            "dev_zero",
        ]
    )
    files: dict[str, str] = {}
    spec = {"unknown_name": "y={f}", "dev_zero": "x=/dev/zero"}.get(how, "x={f}")
    prepare = _bundle(root, lambda d: files.update(f=_npy(d, how)))
    return cli_case(
        case_id,
        "cli.run_input",
        f"run --input {how}",
        lambda d: ["run", "b", "--input", spec.format(**files)],
        prepare,
        "" if how in RUN_OK else "wrong",
    )


def run_output(rng: random.Random, case_id: str, root: Path) -> Case:
    how = rng.choice(["file", "proc", "dev_null", "user_dir", "ok"])
    out = {
        "file": "user/out.txt",
        "proc": "/proc/edgec-fuzz",
        "dev_null": "/dev/null",
        "user_dir": "user",
        "ok": "results",
    }[how]

    def extra(d: Path) -> None:
        (d / "user").mkdir()
        (d / "user" / "out.txt").write_text("the user's data")
        (d / "user" / "x.npy").write_text("the user's own x.npy, not an array")

    def after(d: Path, stdout: str) -> Result | None:
        files = list((d / out).glob("*.npy")) if (d / out).is_dir() else []
        if how == "ok" and len(files) != 1:
            return Result(
                "wrong", "outputs_missing", f"run -o wrote {len(files)} .npy files, not 1"
            )
        return None

    accept = "" if how in ("ok", "user_dir") else "wrong"
    return cli_case(
        case_id,
        "cli.run_output",
        f"run -o {how}",
        lambda d: ["run", "b", "--random", "-o", out],
        _bundle(root, extra),
        accept,
        protect="user",
        after=after,
    )


def run_clash(rng: random.Random, case_id: str, root: Path) -> Case:
    """Outputs whose names clash after sanitising (or traverse): `run -o` must write one file
    per output, all inside the directory."""
    pair = rng.choice(
        [
            ("a b", "a_b"),
            ("A", "a"),
            ("..", "."),
            (f"../../{MARKER}", "x/y"),
            ("con", "con.npy"),
            ("\u00e9", "\u00e8"),
        ]
    )

    def prepare(d: Path) -> None:
        from onnx import TensorProto, helper

        from tests.fuzz.mutate_extra import rename_all
        from tests.fuzz.seeds import make_seed

        m = make_seed("conv_relu_pool").model
        m.graph.output.append(helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 3, 6, 6]))
        rename_all(m, {"y": pair[0], "c": pair[1]})
        (d / "m.onnx").write_bytes(m.SerializeToString())

    def run(d: Path) -> Result:
        import edgec

        edgec.build(str(d / "m.onnx"), device="host", out_dir=d / "b")
        res, _, _ = run_cli(["run", "b", "--random", "-o", "res"], d, CLI_TIMEOUT)
        if res.cls != "ok":
            return res
        files = sorted(p.name for p in (d / "res").iterdir())
        if len(files) != 2:
            return Result("wrong", "outputs_overwritten", f"outputs {pair!r} saved as {files}")
        return Result("ok", "", f"saved as {files}")

    return Case(
        case_id, "cli", "cli.run_clash", f"run -o with outputs named {pair!r}", run, prepare
    )


def misc(rng: random.Random, case_id: str, root: Path) -> Case:
    argv = rng.choice(
        [
            ["bogus"],
            ["build"],
            ["run"],
            ["inspect"],
            ["run", "m.onnx", "--random"],
            ["inspect", "m.onnx"],
            ["run", "/", "--random"],
            ["inspect", "/proc/self"],
            ["run", "nope", "--random"],
            ["build", "m.onnx", "--bogus-flag"],
            ["devices", "show", "x" * 1000],
            ["build", "m.onnx", "-o"],
        ]
    )
    return cli_case(
        case_id, "cli.misc", " ".join(a[:30] for a in argv), lambda d: list(argv), _model(root)
    )

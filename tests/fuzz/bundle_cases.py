"""Tampered bundles. A good bundle is built once per process (in a forked child); each case
copies it, tampers with the copy, and runs `edgec.load(...).run`, `edgec run` or `edgec
inspect` on it. Refusal is right; loading and running a tampered bundle is "security" (a
byte flip in manifest.json that leaves every value edgec uses unchanged may be accepted: the
outputs must then equal onnxruntime's)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import onnx

from tests.fuzz.core import MARKER_CMD, Case, Result, run_cli, run_forked
from tests.fuzz.seeds import make_seed


@dataclass
class Assets:
    """A seed model file and a bundle edgec built from it, shared by the cases of a process."""

    model: Path
    bundle: Path
    error: str = ""


_ASSETS: dict[str, Assets] = {}


class HarnessError(Exception):
    """The harness could not set a case up (reported as a traceback with reason "harness")."""


def assets(root: Path) -> Assets:
    key = str(root)
    if key not in _ASSETS:
        d = root / "assets"
        d.mkdir(parents=True, exist_ok=True)
        model = d / "good.onnx"
        onnx.save(make_seed("conv_relu_pool").model, model)

        def build() -> Result:
            import edgec

            edgec.build(str(model), device="host", out_dir=d / "bundle")
            return Result("ok")

        res = run_forked(build, 120.0, d)
        error = "" if res.cls == "ok" else f"good bundle did not build: {res.cls} {res.summary}"
        _ASSETS[key] = Assets(model, d / "bundle", error)
    return _ASSETS[key]


def need(root: Path) -> Assets:
    a = assets(root)
    if a.error:
        raise HarnessError(a.error)
    return a


def _flip(p: Path, rng: random.Random) -> str:
    data = bytearray(p.read_bytes())
    k = rng.randrange(len(data))
    data[k] ^= rng.randrange(1, 256)
    p.write_bytes(bytes(data))
    return f"byte {k} of {p.name} flipped"


def _evil_so(d: Path) -> Path:
    src = d / "evil.c"
    src.write_text(
        "#include <stdlib.h>\n__attribute__((constructor)) static void pwn(void) "
        f'{{ system("{MARKER_CMD}"); }}\nint model_info;\n'
    )
    so = d / "evil.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(so), str(src)], check=True, timeout=60)
    return so


Tamper = Callable[[Path, dict, random.Random], tuple[object, str]]


def _set(key: str, values: list) -> Tamper:
    def t(b: Path, m: dict, rng: random.Random) -> tuple[object, str]:
        v = rng.choice(values)
        parts = key.split(".")
        target = m
        for p in parts[:-1]:
            target = target[int(p)] if isinstance(target, list) else target[p]
        target[int(parts[-1]) if isinstance(target, list) else parts[-1]] = v
        return m, f"{key} = {str(v)[:60]!r}"

    return t


def _file(rel_choices: list[str], how: str) -> Tamper:
    def t(b: Path, m: dict, rng: random.Random) -> tuple[object, str]:
        p = b / rng.choice(rel_choices)
        if how == "flip":
            return m, _flip(p, rng)
        if how == "delete":
            p.unlink()
        elif how == "symlink":
            copy = b.parent / f"outside-{p.name}"
            shutil.copyfile(p, copy)
            p.unlink()
            p.symlink_to(copy)
        elif how == "dir":
            p.unlink()
            p.mkdir()
        return m, f"{p.relative_to(b)}: {how}"

    return t


def _manifest_text(b: Path, m: dict, rng: random.Random) -> tuple[object, str]:
    text = json.dumps(m, indent=2, sort_keys=True)
    how = rng.choice(["truncate", "empty", "binary", "deep", "inf", "dup_key", "bom"])
    new = {
        "truncate": text[: rng.randrange(1, len(text))],
        "empty": "",
        "binary": "\udcff\x00\x01",
        "deep": "[" * 100_000 + "]" * 100_000,
        "inf": text.replace('"arena_bytes": ', '"arena_bytes": 1e400, "x": ', 1),
        "dup_key": text[:-2] + ',\n  "arena_bytes": -1\n}',
        "bom": "\ufeff" + text,
    }[how]
    (b / "manifest.json").write_bytes(new.encode("utf-8", "surrogateescape"))
    return None, f"manifest.json text: {how}"


def _manifest_flip(b: Path, m: dict, rng: random.Random) -> tuple[object, str]:
    return None, _flip(b / "manifest.json", rng)


def _slices(b: Path, m: dict, rng: random.Random) -> tuple[object, str]:
    evil = _evil_so(b.parent)
    target = rng.choice([str(evil), "../evil.so", "lib/../../evil.so"])
    m["slices"] = [{"shared_library": target, "static_library": "lib/libmodel.a", "abi": "x"}]
    return m, f"slices[0].shared_library = {target!r} (a library outside the bundle)"


def _pristine(b: Path, m: dict, rng: random.Random) -> tuple[object, str]:
    return m, "unchanged"


def _extra_file(b: Path, m: dict, rng: random.Random) -> tuple[object, str]:
    (b / "notes.txt").write_text("a file the user added")
    return m, "notes.txt added (not listed, never loaded)"


def _files_deleted(b: Path, m: dict, rng: random.Random) -> tuple[object, str]:
    del m["files"]
    return m, "files removed"


def _files_traversal(b: Path, m: dict, rng: random.Random) -> tuple[object, str]:
    rel = rng.choice(["../outside", "/etc/hostname", "lib/../../x", "lib\\..\\x"])
    m["files"][rel] = "0" * 64
    return m, f"files[{rel!r}] added"


TAMPERS: dict[str, tuple[Tamper, str]] = {
    # name -> (tamper, class of an accepted load/run); "" = compare outputs instead
    "pristine": (_pristine, ""),
    "extra_file": (_extra_file, ""),
    "files_deleted": (_files_deleted, "security"),
    "files_odd": (_set("files", [{}, [], None, "x", {"lib/libmodel.so": "0" * 64}]), "security"),
    "files_traversal": (_files_traversal, "security"),
    "flip_so": (_file(["lib/libmodel.so"], "flip"), "security"),
    "flip_other": (
        _file(
            [
                "lib/libmodel.a",
                "src/model_model.c",
                "include/model.h",
                "obj/model_weights.o",
                "obj/model_kernels.o",
                "CMakeLists.txt",
            ],
            "flip",
        ),
        "security",
    ),
    "flip_manifest": (_manifest_flip, ""),
    "manifest_type": (
        lambda b, m, rng: (rng.choice([[m], "x", None, 3, True]), "manifest not an object"),
        "security",
    ),
    "manifest_text": (_manifest_text, "security"),
    "arena": (_set("arena_bytes", [-1, 2**62, "100", 1.5, 0, 64, None, True, 2**80]), "security"),
    "out_dtype": (
        _set("outputs.0.dtype", ["bogus", "object", "float64", "", 5, "int8"]),
        "security",
    ),
    "out_shape": (
        _set("outputs.0.shape", [[2**31, 2**31], [], [-1], "abc", [1, 3, 9, 1], [27]]),
        "security",
    ),
    "out_bytes": (_set("outputs.0.bytes", [0, -4, 2**62, 112]), "security"),
    "offset": (_set("inputs.0.arena_offset", [2**40, -1, 1, "0"]), "security"),
    "in_name": (_set("inputs.0.name", ["y", "", "x\n", 5]), "security"),
    "name": (_set("name", ["other", "edgec", "model_info; rm -rf", 5, "", "int"]), "security"),
    # the files are verified whatever the target says: running them is fine if the outputs are
    "target": (_set("target", [{"arch": "sparc"}, "x86_64", {}, {"arch": 5}]), ""),
    "missing": (
        _file(["lib/libmodel.so", "include/model.h", "src/edgec_runtime.c"], "delete"),
        "security",
    ),
    "so_symlink": (_file(["lib/libmodel.so"], "symlink"), "security"),
    "so_dir": (_file(["lib/libmodel.so"], "dir"), "security"),
    "slices": (_slices, "security"),
}
# What `edgec inspect` must refuse too: everything the manifest's own checks and the file
# hashes catch; sizes that only the library can confirm (arena, shapes) it may show.
INSPECT_MAY_SHOW = {
    "pristine",
    "extra_file",
    "flip_manifest",
    "arena",
    "out_shape",
    "out_bytes",
    "offset",
    "in_name",
    "target",
    "out_dtype",
    "slices",
}


def make_bundle_case(rng: random.Random, case_id: str, root: Path) -> Case:
    name = rng.choice(sorted(TAMPERS))
    tamper, accept_is = TAMPERS[name]
    if name == "flip_manifest":
        via = "api"  # an accepted flip is judged by the outputs, which the API returns
    else:
        via = rng.choice(["api", "api", "api", "run", "inspect"])
    info: dict[str, str] = {}
    trng = random.Random(rng.random())

    def prepare(d: Path) -> None:
        b = d / "bundle"
        shutil.copytree(need(root).bundle, b, symlinks=True)
        m = json.loads((b / "manifest.json").read_text())
        new, info["detail"] = tamper(b, m, trng)
        if new is not None or name in ("manifest_type",):
            (b / "manifest.json").write_text(json.dumps(new))

    def run(d: Path) -> Result:
        b = d / "bundle"
        if via == "api":
            return _run_api(b, case_id, accept_is, need(root))
        args = ["run", str(b), "--random"] if via == "run" else ["inspect", str(b)]
        res, _, _ = run_cli(args, d, 50.0)
        if res.cls != "ok":
            return res
        if not accept_is or (via == "inspect" and name in INSPECT_MAY_SHOW):
            return Result("ok", "", f"`edgec {args[0]}` accepted it")
        return Result(
            accept_is, "tampered_accepted", f"`edgec {args[0]}` accepted a tampered bundle ({name})"
        )

    def detail_check(d: Path, res: Result) -> Result:
        res.summary = res.summary or info.get("detail", "")
        return res

    return Case(
        case_id, "bundle", f"bundle.{name}", f"{name} via {via}", run, prepare, detail_check
    )


def _run_api(b: Path, case_id: str, accept_is: str, good: Assets) -> Result:
    import edgec
    from tests.fuzz.oracle import compare, feeds_for, run_ort

    feeds = feeds_for(json.loads((good.bundle / "manifest.json").read_text()), case_id)
    outputs = edgec.load(b).run(feeds)
    if accept_is:
        return Result(
            accept_is, "tampered_accepted", "edgec.load(...).run accepted a tampered bundle"
        )
    want = run_ort(good.model, feeds)
    problem = compare(outputs, want.data.get("outputs", {}), 1e-4)
    if problem:
        return Result("security", "tampered_accepted", f"a tampered bundle ran and gave: {problem}")
    return Result("ok", "", "accepted; outputs unchanged")

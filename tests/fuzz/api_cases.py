"""Bad Python API calls: `edgec.build` with arguments of the wrong type or value, `edgec.load`
on odd paths, `Runner.run` with odd feeds. Only EdgecError may leave the API; accepting a
nonsensical argument is "wrong" (accepted_invalid)."""

from __future__ import annotations

import io
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tests.fuzz.bundle_cases import need
from tests.fuzz.core import Case, Result
from tests.fuzz.oracle import model_oracle

BAD = "wrong"  # class of an accepted bad argument
OK = ""  # acceptance is fine

BUILD_ARGS: list[tuple[str, Callable[[Path], dict], str]] = [
    ("input_shapes str dims", lambda d: {"input_shapes": {"x": "a"}}, BAD),
    ("input_shapes negative", lambda d: {"input_shapes": {"x": [1, 2, -6, 6]}}, BAD),
    ("input_shapes huge", lambda d: {"input_shapes": {"x": [1, 2, 2**70, 6]}}, BAD),
    ("input_shapes float dims", lambda d: {"input_shapes": {"x": [1.0, 2.5, 6, 6]}}, BAD),
    ("input_shapes None dims", lambda d: {"input_shapes": {"x": None}}, BAD),
    ("input_shapes int key", lambda d: {"input_shapes": {1: [1, 2, 6, 6]}}, BAD),
    ("input_shapes str", lambda d: {"input_shapes": "x=1,2,6,6"}, BAD),
    ("input_shapes list", lambda d: {"input_shapes": [1, 2, 6, 6]}, BAD),
    ("input_shapes numpy", lambda d: {"input_shapes": {"x": np.array([1, 2, 6, 6])}}, OK),
    ("input_shapes bool dims", lambda d: {"input_shapes": {"x": [True, 2, 6, 6]}}, BAD),
    ("device int", lambda d: {"device": 3}, BAD),
    ("device None", lambda d: {"device": None}, BAD),
    ("device unknown", lambda d: {"device": "nope"}, BAD),
    ("device empty", lambda d: {"device": ""}, BAD),
    ("device list", lambda d: {"device": ["host"]}, BAD),
    ("threads str", lambda d: {"threads": "2"}, BAD),
    ("threads float", lambda d: {"threads": 2.5}, BAD),
    ("threads bool", lambda d: {"threads": True}, BAD),
    ("threads 0", lambda d: {"threads": 0}, BAD),
    ("threads 99", lambda d: {"threads": 99}, BAD),
    ("threads huge", lambda d: {"threads": 2**70}, BAD),
    ("name None", lambda d: {"name": None}, BAD),
    ("name int", lambda d: {"name": 5}, BAD),
    ("name keyword", lambda d: {"name": "int"}, BAD),
    ("name edgec", lambda d: {"name": "edgec"}, BAD),
    ("name long", lambda d: {"name": "a" * 300}, BAD),
    ("name dash", lambda d: {"name": "a-b"}, BAD),
    ("name bytes", lambda d: {"name": b"model"}, BAD),
    ("model bytes", lambda d: {"model": b"garbage"}, BAD),
    ("model None", lambda d: {"model": None}, BAD),
    ("model int", lambda d: {"model": 123}, BAD),
    ("model empty str", lambda d: {"model": ""}, BAD),
    ("model missing", lambda d: {"model": str(d / "nope.onnx")}, BAD),
    ("model dir", lambda d: {"model": d}, BAD),
    ("model BytesIO", lambda d: {"model": io.BytesIO(b"\x08\x07")}, BAD),
    ("model serialized bytes", lambda d: {"model": (d / "m.onnx").read_bytes()}, OK),
    ("model empty proto", lambda d: {"model": __import__("onnx").ModelProto()}, BAD),
    ("out_dir int", lambda d: {"out_dir": 3}, BAD),
    ("out_dir proc", lambda d: {"out_dir": "/proc/edgec-fuzz-api"}, BAD),
    ("out_dir file", lambda d: {"out_dir": d / "m.onnx"}, BAD),
    ("out_dir nul", lambda d: {"out_dir": str(d / "o\0ut")}, BAD),
    ("fast_math int", lambda d: {"fast_math": 3}, BAD),
    ("fast_math bogus", lambda d: {"fast_math": "bogus"}, BAD),
    ("sparsity None", lambda d: {"sparsity": None}, BAD),
    ("sparse_threshold nan", lambda d: {"sparse_threshold": float("nan")}, BAD),
    ("sparse_threshold str", lambda d: {"sparse_threshold": "0.1"}, BAD),
    ("sparse_code_limit negative", lambda d: {"sparse_code_limit": -1}, BAD),
    ("sparse_code_limit str", lambda d: {"sparse_code_limit": "x"}, BAD),
    ("weights int4", lambda d: {"weights": "int4"}, BAD),
    ("weights None", lambda d: {"weights": None}, BAD),
    ("quantize int4", lambda d: {"quantize": "int4"}, BAD),
    ("quantize int8 without calibration", lambda d: {"quantize": "int8"}, BAD),
    ("calibration int", lambda d: {"calibration": 3}, BAD),
    (
        "tuning_log passwd",
        lambda d: {"tuning_log": "/etc/passwd"},
        OK,
    ),  # lines it cannot parse: skipped
    ("tuning_log int", lambda d: {"tuning_log": 3}, BAD),
    ("progress not callable", lambda d: {"progress": 5}, BAD),
    ("dump_ir str", lambda d: {"dump_ir": "yes"}, BAD),
    ("schedule_overrides list", lambda d: {"schedule_overrides": [1, 2]}, BAD),
    ("unknown keyword", lambda d: {"bogus": 1}, BAD),
]

LOAD_ARGS: list[tuple[str, Callable[[Path], tuple[tuple, dict]], str]] = [
    ("load int", lambda d: ((3,), {}), BAD),
    ("load None", lambda d: ((None,), {}), BAD),
    ("load missing", lambda d: ((d / "nope",), {}), BAD),
    ("load file", lambda d: ((d / "m.onnx",), {}), BAD),
    ("load proc", lambda d: (("/proc/self",), {}), BAD),
    ("load bytes path", lambda d: ((bytes(d / "b"),), {}), BAD),
    ("load num_threads str", lambda d: ((d / "b",), {"num_threads": "2"}), BAD),
    ("load num_threads 0", lambda d: ((d / "b",), {"num_threads": 0}), BAD),
    ("load num_threads huge", lambda d: ((d / "b",), {"num_threads": 2**70}), BAD),
    ("load verify str", lambda d: ((d / "b",), {"verify": "no"}), OK),  # truthy: verifies
    ("load unknown keyword", lambda d: ((d / "b",), {"bogus": 1}), BAD),
]

_X = (1, 2, 6, 6)
FEEDS: list[tuple[str, Callable[[], object], str]] = [
    ("None", lambda: None, BAD),
    ("list", lambda: [np.zeros(_X, np.float32)], BAD),
    ("str value", lambda: {"x": "abc"}, BAD),
    ("wrong shape", lambda: {"x": np.zeros((1, 2, 6), np.float32)}, BAD),
    ("complex", lambda: {"x": np.zeros(_X, np.complex64)}, BAD),
    ("object", lambda: {"x": np.zeros(_X, object)}, BAD),
    ("strings", lambda: {"x": np.full(_X, "a")}, BAD),
    ("extra key", lambda: {"x": np.zeros(_X, np.float32), "y": np.zeros(1)}, BAD),
    ("missing", lambda: {}, BAD),
    ("float64", lambda: {"x": np.ones(_X, np.float64)}, OK),
    ("int64", lambda: {"x": np.ones(_X, np.int64)}, OK),
    ("bool", lambda: {"x": np.ones(_X, bool)}, OK),
    ("float16", lambda: {"x": np.ones(_X, np.float16)}, OK),
    ("scalar", lambda: {"x": 1.0}, BAD),
    ("nested list", lambda: {"x": np.ones(_X).tolist()}, OK),
    ("non-contiguous", lambda: {"x": np.ones((1, 2, 6, 12), np.float32)[..., ::2]}, OK),
    ("read-only", lambda: {"x": np.broadcast_to(np.float32(1), _X)}, OK),
    ("nan", lambda: {"x": np.full(_X, np.nan, np.float32)}, OK),
    ("some nan", lambda: {"x": np.where(np.arange(72).reshape(_X) % 7 == 0, np.nan, 1.0)}, OK),
    ("inf", lambda: {"x": np.where(np.arange(72).reshape(_X) % 5 == 0, -np.inf, 0.5)}, OK),
    ("huge array", lambda: {"x": np.zeros((1, 2, 6, 600000), np.float32)}, BAD),
    ("int key", lambda: {0: np.zeros(_X, np.float32)}, BAD),
    ("uint64 big", lambda: {"x": np.full(_X, 2**64 - 1, np.uint64)}, OK),
    ("datetime", lambda: {"x": np.zeros(_X, "datetime64[s]")}, BAD),
]


def _accepted(accept_is: str, what: str) -> Result:
    if accept_is:
        return Result(accept_is, "accepted_invalid", f"accepted: {what}")
    return Result("ok", "", f"accepted: {what}")


def make_api_case(rng: random.Random, case_id: str, root: Path) -> Case:
    kind = rng.choices(["build", "load", "run"], [6, 2, 3])[0]

    def prepare(d: Path) -> None:
        a = need(root)
        shutil.copyfile(a.model, d / "m.onnx")
        shutil.copytree(a.bundle, d / "b", symlinks=True)

    if kind == "build":
        what, make, accept_is = rng.choice(BUILD_ARGS)

        def run(d: Path) -> Result:
            import edgec

            kw = {"model": str(d / "m.onnx"), "device": "host", "out_dir": d / "out", **make(d)}
            edgec.build(**kw)
            return _accepted(accept_is, what)

    elif kind == "load":
        what, make_load, accept_is = rng.choice(LOAD_ARGS)

        def run(d: Path) -> Result:
            import edgec

            args, kw = make_load(d)
            edgec.load(*args, **kw)
            return _accepted(accept_is, what)

    else:
        what, make_feeds, accept_is = rng.choice(FEEDS)

        def run(d: Path) -> Result:
            import edgec

            runner = edgec.load(d / "b")
            feeds = make_feeds()
            outs = runner.run(feeds)
            if accept_is:
                return _accepted(accept_is, what)
            x = np.asarray(feeds["x"]).astype(np.float32)  # type: ignore[index]
            return Result("ok", "", f"accepted {what}", data={"feeds": {"x": x}, "outputs": outs})

        oracle = model_oracle(lambda d: d / "m.onnx", 1e-4)
        return Case(case_id, "api", "api.run", what, run, prepare, oracle=oracle)

    return Case(case_id, "api", f"api.{kind}", what, run, prepare)

"""A fuzz campaign: case `index` of seed `seed` is made by random.Random(f"{seed}:{index}") alone,
run in its own directory and forked child, checked, and recorded."""

from __future__ import annotations

import functools
import multiprocessing
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import onnx

from tests.fuzz import mutate_extra as extra
from tests.fuzz.api_cases import make_api_case
from tests.fuzz.bundle_cases import HarnessError, assets, make_bundle_case
from tests.fuzz.cli_cases import make_cli_case
from tests.fuzz.core import MARKER, Case, Result, marker_found, one_line, run_cli, run_forked
from tests.fuzz.mutate_model import MODEL_MUTATIONS
from tests.fuzz.oracle import build_and_run, model_oracle, run_bundle
from tests.fuzz.seeds import SEEDS, make_seed

# Model mutations beyond mutate_model.py, with the seeds they apply to (None: any).
EXTRA_MUTATIONS: dict[str, tuple[Callable, tuple[str, ...] | None]] = {
    "names.payload": (extra.names_payload, None),
    "names.meta": (extra.names_meta, None),
    "names.shape": (extra.names_shape, ("conv_relu_pool", "matmul_softmax", "gather", "resize")),
    "names.invalid_utf8": (extra.names_invalid_utf8, None),
    "func.odd": (extra.functions_odd, None),
    "file.bytes": (extra.file_bytes, None),
    "extdata.odd": (extra.external_data, None),
}
# Relative weights of the mutations of the model family.
MODEL_WEIGHTS = {name: 2 for name in MODEL_MUTATIONS} | {
    "graph.long_chain": 1,
    "quant.params": 3,
    "names.payload": 4,
    "names.meta": 2,
    "names.shape": 3,
    "names.invalid_utf8": 1,
    "func.odd": 4,
    "file.bytes": 5,
    "extdata.odd": 6,
    "attr.valid": 6,
}
FAMILY_WEIGHTS = {"model": 60, "api": 9, "cli": 16, "bundle": 15}


@dataclass
class Record:
    id: str
    family: str
    mutation: str
    detail: str
    cls: str
    reason: str
    summary: str
    seconds: float


def make_model_case(rng: random.Random, case_id: str) -> Case:
    names = sorted(MODEL_WEIGHTS)
    mutation = rng.choices(names, [MODEL_WEIGHTS[n] for n in names])[0]
    fn, seeds = MODEL_MUTATIONS.get(mutation) or EXTRA_MUTATIONS[mutation]
    seed = make_seed(rng.choice(seeds or sorted(SEEDS)), rng.randrange(1000))
    m = onnx.ModelProto()
    m.CopyFrom(seed.model)
    art: extra.Artifact
    if mutation == "extdata.odd":
        art, detail = fn(m, rng)
    elif mutation == "file.bytes":
        data, detail = fn(m, rng)
        art = extra.Artifact(data)
    elif mutation == "names.invalid_utf8":
        art, detail = extra.Artifact(fn(m, rng)), "a tensor name that is not UTF-8"
    else:
        detail = fn(m, rng)
        if mutation in MODEL_MUTATIONS and rng.random() < 0.2:  # stacked: a second proto mutation
            second = rng.choice(sorted(MODEL_MUTATIONS))
            allowed = MODEL_MUTATIONS[second][1]
            if allowed is None or seed.name in allowed:
                try:  # mutators expect a seed; on a mutated model one may not apply
                    detail += f" + {second}: {MODEL_MUTATIONS[second][0](m, rng)}"
                except Exception as exc:  # noqa: BLE001
                    detail += f" + {second}: not applicable ({type(exc).__name__})"
        art = extra.Artifact(m.SerializeToString())
    byte_level = mutation in ("file.bytes", "names.invalid_utf8") or mutation == "extdata.odd"
    cli_weight = 4 if mutation.startswith("names.") else 1  # names are printed by run/inspect
    via = (
        "proto"
        if art.proto_only
        else rng.choices(["proto", "path", "cli"], [0 if byte_level else 5, 5, cli_weight])[0]
    )
    build_kw = {"threads": 2} if rng.random() < 0.1 else {}
    special = rng.random() < 0.15  # NaN in the run-time inputs
    detail = (
        f"{seed.name}: {detail} [via {via}{', threads 2' if build_kw else ''}"
        f"{', NaN inputs' if special else ''}]"
    )

    def prepare(d: Path) -> None:
        art.write(d)

    def run(d: Path) -> Result:
        path = d / "model" / "model.onnx"
        if via == "cli":
            res, _, _ = run_cli(
                [
                    "build",
                    str(path),
                    "-o",
                    str(d / "out"),
                    *(["--threads", "2"] if build_kw else []),
                ],
                d,
                50.0,
            )
            if res.cls != "ok":
                return res
            if art.accept_is:
                return Result(art.accept_is, "accepted", "`edgec build` accepted it")
            for cmd in (["inspect", "out"], ["run", "out", "--random"]):  # they print the names
                res, _, err = run_cli(cmd, d, 50.0)
                if res.cls == "clean_error":
                    return Result(
                        "wrong",
                        "built_but_unrunnable",
                        f"`edgec {cmd[0]}` refuses the bundle edgec built: {res.summary}",
                    )
                if res.cls != "ok":
                    return Result(res.cls, res.reason, f"`edgec {cmd[0]}`: {res.summary}")
            from edgec.errors import EdgecError, InternalError

            return run_bundle(d / "out", "model", case_id, EdgecError, InternalError, special)
        model: object = path
        if via == "proto":
            model = onnx.ModelProto()
            model.ParseFromString(path.read_bytes())
        return build_and_run(model, d / "out", case_id, art.accept_is, special, **build_kw)

    def source(d: Path) -> Path | bytes:
        """The model for onnxruntime and the checker (in their forked children). External data
        is loaded inline first: neither can infer shapes from external shape operands."""
        path = d / "model" / "model.onnx"
        if mutation == "extdata.odd":
            try:
                return inline_external_data(path)
            except Exception:  # noqa: BLE001 - they get to refuse the file itself
                return path
        return path

    return Case(
        case_id, "model", mutation, detail, run, prepare, oracle=model_oracle(source, seed.tol)
    )


def inline_external_data(path: Path) -> bytes:
    """The model with its external tensors read into raw_data, as edgec would read them
    (paths relative to the model's directory, symlinks followed, offset and length applied)."""
    m = onnx.load(str(path), load_external_data=False)
    for t in m.graph.initializer:
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in t.external_data}
        with open(path.parent / info["location"], "rb") as f:
            f.seek(int(info.get("offset") or 0))
            t.raw_data = f.read(int(info["length"])) if info.get("length") else f.read()
        del t.external_data[:]
        t.data_location = onnx.TensorProto.DEFAULT
    return m.SerializeToString()


def make_case(seed: int | str, index: int, root: Path) -> Case:
    case_id = f"{seed}:{index}"
    rng = random.Random(case_id)
    fams = sorted(FAMILY_WEIGHTS)
    family = rng.choices(fams, [FAMILY_WEIGHTS[f] for f in fams])[0]
    if family == "model":
        return make_model_case(rng, case_id)
    if family == "api":
        return make_api_case(rng, case_id, root)
    if family == "cli":
        return make_cli_case(rng, case_id, root)
    return make_bundle_case(rng, case_id, root)


def run_case(case: Case, root: Path) -> Record:
    d = root / f"case-{case.id.replace(':', '-')}"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    t0 = time.perf_counter()
    try:
        if case.prepare:
            case.prepare(d)
    except Exception as exc:  # noqa: BLE001 - the harness's own failure is reported, never hidden
        res = Result(
            "traceback", "harness", f"case setup failed: {type(exc).__name__}: {one_line(exc)}"
        )
    else:
        res = run_forked(lambda: case.run(d), case.timeout, d)
        try:
            if res.cls == "ok" and case.oracle:
                res = case.oracle(d, res)
            if case.check:
                res = case.check(d, res)
        except Exception as exc:  # noqa: BLE001
            res = Result(
                "traceback", "harness", f"case check failed: {type(exc).__name__}: {one_line(exc)}"
            )
    marker = marker_found(d) or next((p for p in root.glob(MARKER + "*")), None)
    if marker is not None:
        res = Result(
            "security", "payload_ran", f"a payload created {marker.name} ({case.detail[:80]})"
        )
        if marker.parent == root:
            marker.unlink()
    shutil.rmtree(d, ignore_errors=True)
    summary = res.summary or ""
    return Record(
        case.id,
        case.family,
        case.mutation,
        case.detail,
        res.cls,
        res.reason,
        summary,
        round(time.perf_counter() - t0, 3),
    )


def _one(seed: int | str, root: Path, index: int) -> Record:
    try:
        case = make_case(seed, index, root)
    except Exception as exc:  # noqa: BLE001 - a harness bug is reported, never hidden
        text = (
            str(exc) if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {one_line(exc)}"
        )
        return Record(
            f"{seed}:{index}",
            "?",
            "?",
            "case construction failed",
            "traceback",
            "harness",
            text,
            0.0,
        )
    return run_case(case, root)


def run_campaign(
    seed: int | str,
    indices: Iterable[int],
    jobs: int = 1,
    root: Path | None = None,
    progress: Callable[[Record], None] | None = None,
) -> list[Record]:
    """Run cases `indices` of `seed`; `jobs` > 1 runs them in a pool of forked workers (each
    case still forks its own child)."""
    own = root is None
    root = Path(tempfile.mkdtemp(prefix="edgec-fuzz-")) if root is None else root
    records: list[Record] = []
    try:
        assets(root)  # the good bundle, built once before the workers fork
        work = functools.partial(_one, seed, root)
        idx = list(indices)
        if jobs <= 1:
            it: Iterable[Record] = map(work, idx)
            for rec in it:
                records.append(rec)
                if progress:
                    progress(rec)
        else:
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                for rec in pool.imap_unordered(work, idx, chunksize=1):
                    records.append(rec)
                    if progress:
                        progress(rec)
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)
    records.sort(key=lambda r: int(r.id.rsplit(":", 1)[1]))
    return records


def failing(records: list[Record]) -> list[Record]:
    from tests.fuzz.core import FAILING

    return [r for r in records if r.cls in FAILING]


def as_json(seed: int | str, records: list[Record], seconds: float) -> dict:
    from collections import Counter

    return {
        "seed": seed,
        "cases": len(records),
        "seconds": round(seconds, 1),
        "counts": dict(Counter(r.cls for r in records)),
        "records": [asdict(r) for r in records],
    }

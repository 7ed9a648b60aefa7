"""What an accepted case is checked against: the bundle's exported symbols, the outputs of
onnxruntime on the same feeds, and whether onnxruntime and the ONNX checker accept the model
at all. The checker and onnxruntime run in their own forked children: both have C++ code that
crashes on hostile models, which must not be blamed on edgec."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx

from tests.fuzz.core import Result, one_line, run_forked

ORACLE_TIMEOUT = 30.0


def case_rng(case_id: str) -> np.random.Generator:
    return np.random.default_rng(
        int.from_bytes(hashlib.sha256(case_id.encode()).digest()[:8], "little")
    )


def feeds_for(manifest: dict, case_id: str, special: bool = False) -> dict[str, np.ndarray]:
    """Seeded inputs for the bundle's inputs as its manifest describes them (small integers
    for integer inputs, so that index-like inputs stay in range). `special`: a few float
    elements are NaN (whose propagation is defined whatever the order of summation; where
    an Inf meets a -Inf, or 0 * Inf in padding, is not)."""
    rng = case_rng(case_id)
    feeds = {}
    for t in manifest["inputs"]:
        dt = np.dtype(t["dtype"])
        if dt.kind == "f":
            a = rng.standard_normal(t["shape"]).astype(dt)
            if special and a.size:
                flat = a.reshape(-1)
                k = rng.integers(0, flat.size, size=min(3, flat.size))
                flat[k] = np.nan
            feeds[t["name"]] = a
        elif dt.kind == "b":
            feeds[t["name"]] = rng.integers(0, 2, t["shape"]).astype(dt)
        else:
            feeds[t["name"]] = rng.integers(0, 2, t["shape"]).astype(dt)
    return feeds


def exported_symbols(lib: Path) -> set[str]:
    from elftools.elf.elffile import ELFFile

    with lib.open("rb") as f:
        dynsym = ELFFile(f).get_section_by_name(".dynsym")
        if dynsym is None:
            return set()
        return {
            s.name
            for s in dynsym.iter_symbols()
            if s.name
            and s["st_shndx"] != "SHN_UNDEF"
            and s["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK")
        }


def foreign_exports(lib: Path, prefix: str) -> list[str]:
    """Exported symbols that are neither the model's API (`<prefix>_*`) nor the runtime's."""
    return sorted(s for s in exported_symbols(lib) if not s.startswith((f"{prefix}_", "edgec_")))


def build_and_run(
    model: object,
    out: Path,
    case_id: str,
    accept_is: str = "",
    special: bool = False,
    **build_kw: object,
) -> Result:
    """In a case's child: edgec.build, the export check, edgec.load and run on seeded feeds.
    `accept_is`: the class of a successful build when the input must be refused (e.g.
    "security" for external data outside the model's directory)."""
    import edgec
    from edgec.errors import EdgecError, InternalError

    bundle = edgec.build(model, device="host", out_dir=out, **build_kw)
    if accept_is:
        return Result(accept_is, "accepted", f"edgec built a bundle from {case_id}'s input")
    return run_bundle(
        bundle.path, bundle.manifest["name"], case_id, EdgecError, InternalError, special
    )


def run_bundle(
    path: Path, prefix: str, case_id: str, edgec_error: type, internal: type, special: bool = False
) -> Result:
    import edgec

    lib = path / "lib" / f"lib{prefix}.so"
    foreign = foreign_exports(lib, prefix) if lib.is_file() else []
    if foreign:
        return Result("security", "exports", f"{lib.name} exports {foreign[:5]}")
    manifest = json.loads((path / "manifest.json").read_text())
    feeds = feeds_for(manifest, case_id, special)
    try:
        outputs = edgec.load(path).run(feeds)
    except edgec_error as exc:
        if isinstance(exc, internal):
            raise
        return Result(
            "wrong",
            "built_but_unrunnable",
            f"edgec refuses the bundle it built: {type(exc).__name__}: {one_line(exc)}",
        )
    return Result("ok", "", "", data={"feeds": feeds, "outputs": outputs})


def _check_model(source: Path | bytes) -> Result:
    model = str(source) if isinstance(source, Path) else onnx.load_from_string(source)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # noqa: BLE001 - any refusal
        return Result("clean_error", "checker", one_line(exc))
    return Result("ok")


def run_ort(source: Path | bytes, feeds: dict[str, np.ndarray]) -> Result:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 4
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        sess = ort.InferenceSession(
            str(source) if isinstance(source, Path) else source,
            so,
            providers=["CPUExecutionProvider"],
        )
        names = [o.name for o in sess.get_outputs()]
        outs = sess.run(None, feeds)
    except Exception as exc:  # noqa: BLE001
        return Result("clean_error", "onnxruntime", one_line(exc))
    return Result("ok", data={"outputs": dict(zip(names, outs)), "names": names})


def _run_reference(source: Path | bytes, feeds: dict[str, np.ndarray], names: list[str]) -> Result:
    from onnx.reference import ReferenceEvaluator

    model = onnx.load(str(source)) if isinstance(source, Path) else onnx.load_from_string(source)
    try:
        outs = ReferenceEvaluator(model).run(None, feeds)
    except Exception as exc:  # noqa: BLE001
        return Result("clean_error", "reference", one_line(exc))
    return Result("ok", data={"outputs": {n: np.asarray(o) for n, o in zip(names, outs)}})


def close(g: np.ndarray, w: np.ndarray, tol: float) -> np.ndarray:
    """Elementwise agreement: NaN with NaN, Inf with the same Inf, else
    |g - w| <= tol * max(1, |w|); exact for non-float dtypes."""
    if w.dtype.kind not in "fc":
        return g == w
    g64, w64 = g.astype(np.float64), w.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        near = np.abs(g64 - w64) <= tol * np.maximum(1.0, np.abs(w64))
    return (np.isnan(g64) & np.isnan(w64)) | (g64 == w64) | (np.isfinite(w64) & near)


def compare(
    got: dict[str, np.ndarray],
    want: dict[str, np.ndarray],
    tol: float,
    where: dict[str, np.ndarray] | None = None,
) -> str | None:
    """None if the outputs agree: same names, shapes and dtypes, and `close` everywhere (or
    only at the elements `where` marks)."""
    if list(got) != list(want):
        return f"output names {list(got)[:4]} != onnxruntime's {list(want)[:4]}"
    for name, w in want.items():
        g, w = np.asarray(got[name]), np.asarray(w)
        if g.shape != w.shape or g.dtype != w.dtype:
            return (
                f"output {name[:40]!r}: {g.dtype}{list(g.shape)} != "
                f"onnxruntime's {w.dtype}{list(w.shape)}"
            )
        bad = ~close(g, w, tol)
        if where is not None:
            bad &= where[name]
        if bad.any():
            k = tuple(int(i) for i in np.argwhere(bad)[0])
            return (
                f"output {name[:40]!r}: {int(bad.sum())} of {bad.size} elements differ "
                f"(at {list(k)}: {_num(g[k])} != {_num(w[k])})"
            )
    return None


def _num(v: object) -> str:
    try:
        return f"{float(v):.7g}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return repr(v)


def agreement(
    a: dict[str, np.ndarray], b: dict[str, np.ndarray], tol: float
) -> dict[str, np.ndarray] | None:
    """Where two oracles agree, output by output (None if their outputs do not even match up)."""
    if list(a) != list(b):
        return None
    out = {}
    for name in a:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if x.shape != y.shape:
            return None
        out[name] = close(x, y.astype(x.dtype, copy=False), tol)
    return out


def model_oracle(
    source: Callable[[Path], Path | bytes], tol: float
) -> Callable[[Path, Result], Result]:
    """The oracle of a model case: `source(case_dir)` is the model edgec was given (a file, or
    the serialized proto)."""

    def oracle(case_dir: Path, res: Result) -> Result:
        feeds, outputs = res.data.get("feeds"), res.data.get("outputs")
        if feeds is None or outputs is None:
            return res
        # source() runs in the forked children: it may read hostile external data (a FIFO)
        ort = run_forked(lambda: run_ort(source(case_dir), feeds), ORACLE_TIMEOUT, case_dir)
        if ort.cls == "ok":
            problem = compare(outputs, ort.data["outputs"], tol)
            if not problem:
                return Result("ok", "", "matches onnxruntime")
            # onnxruntime is not always right (NaN handling): onnx.reference decides; where the
            # two disagree with each other, an element proves nothing
            ref = run_forked(
                lambda: _run_reference(source(case_dir), feeds, list(outputs)),
                ORACLE_TIMEOUT,
                case_dir,
            )
            if ref.cls != "ok":
                return Result("wrong", "mismatch", problem + " (onnx.reference could not run it)")
            if compare(outputs, ref.data["outputs"], tol) is None:
                return Result(
                    "ok",
                    "reference_agrees",
                    f"onnxruntime differs ({problem}); onnx.reference agrees with edgec",
                )
            agreed = agreement(ort.data["outputs"], ref.data["outputs"], tol)
            problem = compare(outputs, ort.data["outputs"], tol, agreed) if agreed else problem
            if problem:
                return Result(
                    "wrong", "mismatch", problem + " (onnxruntime and onnx.reference agree)"
                )
            return Result(
                "ok",
                "oracles_disagree",
                "edgec differs only where onnxruntime and onnx.reference disagree too",
            )
        checker = run_forked(lambda: _check_model(source(case_dir)), ORACLE_TIMEOUT, case_dir)
        if checker.cls != "ok":
            return Result(
                "wrong",
                "accepted_invalid",
                f"onnxruntime refuses ({ort.cls}: {ort.summary[:80]}); checker refuses "
                f"({checker.summary[:80]})",
            )
        return Result("ok", "oracle_refused", f"onnxruntime refuses ({ort.summary[:100]})")

    return oracle

"""The cycle model against measurement, and its tables for devices we do not have (issue 18,
acceptance 1 and 2; docs/estimate.md). Not a test: prints and writes JSON.

    python -m benchmarks.estimate --calibrate        # host: estimate vs `edgec bench --profile`
    python -m benchmarks.estimate --device rpi4      # per-model summary on a Cortex-A72
    python -m benchmarks.estimate --fp16 rpi5        # --precision fp16: speed-up and accuracy

--calibrate builds MobileNetV2, ResNet-18 and the PP-OCR det for this machine with --profile,
runs them (`edgec bench --local --profile --json`, 1 thread), estimates the same kernels, and
prints per model the Spearman rank correlation of the per-layer times and the ratio of the
totals (goal: Spearman >= 0.8, totals within +-35%). --device prints, per model, the estimated
total, the fp32 convs' MAC-weighted share of the core's FMA peak and the depthwise layers' time
over their roofline (the FMA peak or moving input and output once through L2, whichever is
slower; goal on rpi4: convs >= 70%, depthwise <= 1.5x). --fp16 estimates MobileNetV2 and the
PP-OCR det built with `--precision fp16` against the fp32 build (goal: >= 1.7x) and runs both
under qemu-user to compare the outputs with onnxruntime's fp32 ones (goal: cosine >= 0.999)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from rich.console import Console
from rich.table import Table

from benchmarks.timing import write_json
from edgec.estimate import core_of, estimate
from edgec.targets import get_profile
from edgec.tune.cost_model import spearman

OUT = Path(__file__).resolve().parent / "results"
con = Console()


def _models(with_sampling: bool) -> dict[str, onnx.ModelProto]:
    from edgec.models.mobilenet_v2 import mobilenet_v2
    from edgec.models.ppocr_det import ppocr_det
    from edgec.models.resnet import resnet18

    models = {"mobilenetv2": mobilenet_v2(), "resnet18": resnet18(), "ppocr_det": ppocr_det()}
    if with_sampling:
        from edgec.models.sampling_net import sampling_net

        models["sampling_net"] = sampling_net()
    return models


def _measured(model: onnx.ModelProto, tmp: Path, name: str) -> dict:
    path = tmp / f"{name}.onnx"
    onnx.save(model, path)
    proc = subprocess.run([sys.executable, "-m", "edgec.cli", "bench", str(path), "--local", "--profile", "--json",
                           "--runs", "20"], capture_output=True, text=True, cwd=tmp, timeout=1800)
    if proc.returncode:
        raise SystemExit(f"bench {name} failed: {proc.stderr[-500:]}")
    return json.loads(proc.stdout)


def calibrate() -> dict:
    rows, doc = [], {}
    with tempfile.TemporaryDirectory(prefix="edgec-est-") as tmp:
        for name, model in _models(False).items():
            meas = _measured(model, Path(tmp), name)
            est = estimate(model, "host")
            by_symbol = {x["symbol"]: x for x in meas["layers"]}
            pairs = [(x["us"], by_symbol[x["symbol"]]["us"]) for x in est["layers"] if x["symbol"] in by_symbol]
            e, m = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
            rho, ratio = spearman(e, m), float(e.sum() / m.sum())
            rows.append((name, len(pairs), rho, float(e.sum()), float(m.sum()), ratio))
            doc[name] = {"layers": len(pairs), "spearman": rho, "estimated_us": float(e.sum()),
                         "measured_us": float(m.sum()), "total_ratio": ratio, "clock_ghz": est["clock_ghz"],
                         "mca_cpu": est["mca_cpu"],
                         "per_layer": [{"symbol": x["symbol"], "op": x["op"], "estimated_us": x["us"],
                                        "measured_us": by_symbol[x["symbol"]]["us"]}
                                       for x in est["layers"] if x["symbol"] in by_symbol]}
    t = Table("model", "layers", "Spearman", "estimated µs", "measured µs", "est/meas",
              title=f"cycle model vs edgec bench --profile on this machine ({est['cpu']}, llvm-mca "
                    f"-mcpu={est['mca_cpu']}, measured clock {est['clock_ghz']:.2f} GHz)")
    for name, n, rho, e_, m_, r in rows:
        t.add_row(name, str(n), f"{rho:.3f}", f"{e_:.0f}", f"{m_:.0f}", f"{r:.2f}")
    t.caption = "goal: Spearman >= 0.8 and est/meas within 0.65-1.35 (issue 18, acceptance 1)"
    con.print(t)
    return doc


def device_tables(device: str) -> dict:
    profile = get_profile(device)
    core = core_of(profile)
    t = Table("model", "est. ms", "fp32 conv % peak", "weakest conv % peak", "depthwise / roofline",
              title=f"estimate for {device} ({profile.cpu}, 1 thread)")
    doc = {}
    for name, model in _models(True).items():
        r = estimate(model, device)
        convs = [x for x in r["layers"] if x["op"] in ("ConvDirect", "ConvOcvec") and x["macs"]]
        peak = r["peak_mac_per_cycle"] or 1
        share = sum(x["macs"] for x in convs) / sum(x["cycles"] for x in convs) / peak if convs else None
        weakest = min((x["peak_fraction"] for x in convs if x["peak_fraction"]), default=None)
        dw = [x for x in r["layers"] if x["op"].startswith("Depthwise")]
        dw_ratio = dw_worst = None
        if dw:  # roofline: the FMA peak or moving input and output once, whichever is slower
            floors = [max(x["macs"] / peak, x["bytes"] / core.bytes_per_cycle(x["bytes"])) for x in dw]
            dw_ratio = sum(x["cycles"] for x in dw) / max(1.0, sum(floors))
            dw_worst = max(x["cycles"] / max(1.0, f) for x, f in zip(dw, floors))
        t.add_row(name, f"{r['total_us'] / 1e3:.1f}", "-" if share is None else f"{100 * share:.0f}",
                  "-" if weakest is None else f"{100 * weakest:.0f}", "-" if dw_ratio is None else f"{dw_ratio:.2f}x (worst {dw_worst:.2f}x)")
        doc[name] = {"total_us": r["total_us"], "conv_peak_fraction": share, "weakest_conv_peak_fraction": weakest,
                     "depthwise_over_roofline": dw_ratio, "worst_depthwise_over_roofline": dw_worst, "clock_ghz": r["clock_ghz"], "mca_cpu": r["mca_cpu"],
                     "layers": [{k: x[k] for k in ("name", "op", "shape", "macs", "us", "peak_fraction", "bound", "bytes")}
                                for x in r["layers"]]}
    t.caption = "goals on rpi4 (issue 18, acceptance 2): fp32 convs >= 70% of peak, depthwise <= 1.5x its roofline"
    con.print(t)
    return doc


def fp16_tables(device: str) -> dict:
    from edgec.models.mobilenet_v2 import mobilenet_v2
    from edgec.models.ppocr_det import ppocr_det
    from edgec.options import BuildOptions
    from tests.helpers import run_edgec, run_onnxruntime

    t = Table("model", "fp32 est. ms", "fp16 est. ms", "speed-up", "fp16 conv % of fp16 peak", "cosine vs fp32",
              title=f"--precision fp16 on {device} ({get_profile(device).cpu}, 1 thread)")
    doc = {}
    for name, model in {"mobilenetv2": mobilenet_v2(), "ppocr_det": ppocr_det()}.items():
        r32 = estimate(model, device)
        inp = model.graph.input[0]
        x = np.random.default_rng(0).standard_normal([d.dim_value for d in inp.type.tensor_type.shape.dim])
        want = run_onnxruntime(model, {inp.name: x.astype(np.float32)})[0].astype(np.float64).ravel()
        # fast-math (the default) lets fp16 Winograd take F(4,3); off keeps F(2,3) (docs/fp16.md)
        for fast in (True, False):
            r16 = estimate(model, device, BuildOptions(compute="fp16", fast_math=fast))
            convs = [x for x in r16["layers"] if x["op"] in ("ConvDirect", "ConvOcvec") and x["macs"]]
            share = sum(x["macs"] for x in convs) / sum(x["cycles"] for x in convs) / (2 * (r16["peak_mac_per_cycle"] or 1))
            got = run_edgec(model, {inp.name: x.astype(np.float32)}, device, precision="fp16",
                            fast_math=fast)[0].astype(np.float64).ravel()
            cos = float(got @ want / np.linalg.norm(got) / np.linalg.norm(want))
            speed = r32["total_us"] / r16["total_us"]
            label = name if fast else f"{name} (--fast-math off)"
            t.add_row(label, f"{r32['total_us'] / 1e3:.1f}", f"{r16['total_us'] / 1e3:.1f}", f"{speed:.2f}x",
                      f"{100 * share:.0f}", f"{cos:.5f}")
            doc[name if fast else f"{name}_fast_math_off"] = {
                "fp32_total_us": r32["total_us"], "fp16_total_us": r16["total_us"], "speedup": speed,
                "fp16_conv_peak_fraction": share, "cosine_vs_fp32": cos, "clock_ghz": r16["clock_ghz"],
                "layers_fp16": [{k: y[k] for k in ("name", "op", "shape", "macs", "us", "peak_fraction")}
                                for y in r16["layers"]]}
    t.caption = "goals (issue 18, acceptance 4): estimated speed-up >= 1.7x, cosine >= 0.999 (outputs under qemu-user)"
    con.print(t)
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calibrate", action="store_true", help="estimate vs measured on this machine")
    ap.add_argument("--device", default=None, help="print per-model estimates for this device profile")
    ap.add_argument("--fp16", default=None, metavar="DEVICE", help="--precision fp16 vs fp32 on this device")
    a = ap.parse_args()
    if not a.calibrate and not a.device and not a.fp16:
        ap.error("pass --calibrate, --device NAME and/or --fp16 DEVICE")
    if a.calibrate:
        print(write_json(OUT / "estimate_calibration.json", calibrate()))
    if a.device:
        print(write_json(OUT / f"estimate_{a.device}.json", device_tables(a.device)))
    if a.fp16:
        print(write_json(OUT / f"estimate_fp16_{a.fp16}.json", fp16_tables(a.fp16)))


if __name__ == "__main__":
    main()

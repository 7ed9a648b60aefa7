"""`edgec devices list|add|remove|check` (device profiles and the SSH device registry) and
`edgec bench` (a bundle timed on this machine or on a registered device). Registered on the main
app by edgec/cli.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgec.cli_args import load_input, parse_shapes
from edgec.errors import EdgecError

devices_app = typer.Typer(no_args_is_help=True, help="Device profiles.")
err = Console(stderr=True)
out = Console()


@devices_app.command("list")
def devices_list(as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
                 registered: Annotated[bool, typer.Option(
                     "--registered", help="list only the registered remote devices")] = False) -> None:
    """List the device profiles `--device` accepts, then the registered remote devices."""
    from edgec.targets import PROFILES, host_profile

    if registered:
        _print_registered(as_json)
        return
    profiles = [host_profile(), *PROFILES.values()]
    if as_json:
        print(json.dumps([p.summary() | {"description": p.description} for p in profiles], sort_keys=True))
        return
    t = Table("device", "triple", "cpu", "description")
    for p in profiles:
        t.add_row(p.name + (f" ({', '.join(p.aliases)})" if p.aliases else ""), p.triple, p.cpu, p.description)
    out.print(t)
    _print_registered(False)


def _print_registered(as_json: bool) -> None:
    from edgec.device import load_devices, registry_path

    devices = load_devices()
    if as_json:
        print(json.dumps([d.to_json() for _, d in sorted(devices.items())], sort_keys=True))
        return
    if not devices:
        out.print(f"no registered devices ({registry_path()}); add one with `edgec devices add`", highlight=False)
        return
    t = Table("device", "address", "profile", "key", "exec wrapper", title=f"registered devices ({registry_path()})")
    for name, d in sorted(devices.items()):
        t.add_row(name, d.address, d.profile, d.key or "(ssh-agent)", d.exec_wrapper or "-")
    out.print(t)


@devices_app.command("add")
def devices_add(
    name: Annotated[str, typer.Argument(help="name for the device, e.g. pi4")],
    host: Annotated[str, typer.Option("--host", help="host name or IP address")],
    user: Annotated[str, typer.Option("--user", help="SSH user")],
    profile: Annotated[str, typer.Option("--profile", help="device profile (see `edgec devices list`)")],
    port: Annotated[int, typer.Option("--port", help="SSH port")] = 22,
    key: Annotated[Optional[str], typer.Option(
        "--key", help="private key file (default: ssh-agent, then ~/.ssh/id_*); passwords are not supported")] = None,
    exec_wrapper: Annotated[Optional[str], typer.Option(
        "--exec-wrapper", help="command that runs the profile's binaries on the device, e.g. qemu-aarch64")] = None,
    known_hosts: Annotated[Optional[str], typer.Option(
        "--known-hosts", help="known_hosts file (default: $EDGEC_KNOWN_HOSTS or ~/.ssh/known_hosts)")] = None,
    remote_tmp: Annotated[Optional[str], typer.Option(
        "--remote-tmp", help="directory for per-run temp dirs on the device (default: $TMPDIR or /tmp)")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="overwrite a device of the same name")] = False,
    trust_new_host: Annotated[bool, typer.Option(
        "--trust-new-host", help="connect now and record the device's host key if it is unknown")] = False,
) -> None:
    """Register a remote device (stored in the user config dir; no secrets are stored)."""
    from edgec.device import Device, DeviceEntry, add_device, registry_path, setup_logging
    from edgec.device.registry import validate

    setup_logging()
    entry = validate(DeviceEntry(name, host, user, profile, port, key or "", exec_wrapper or "",
                                 known_hosts or "", remote_tmp or ""))
    if trust_new_host:  # connect before saving: a failed add leaves nothing behind
        with Device(entry, trust_new_host=True) as dev:
            err.print(f"host key of {entry.address}: {dev.host_key.get_name()} {dev.host_key.fingerprint}",
                      highlight=False)
    add_device(entry, replace=replace)
    err.print(f"added device {name!r} ({entry.address}, profile {entry.profile}) to {registry_path()}",
              highlight=False)


@devices_app.command("remove")
def devices_remove(name: Annotated[str, typer.Argument(help="registered device name")]) -> None:
    """Remove a registered device (its known_hosts entry is left alone)."""
    from edgec.device import registry_path, remove_device

    remove_device(name)
    err.print(f"removed device {name!r} from {registry_path()}", highlight=False)


@devices_app.command("check")
def devices_check(
    name: Annotated[str, typer.Argument(help="registered device name")],
    trust_new_host: Annotated[bool, typer.Option(
        "--trust-new-host", help="record the device's host key if it is unknown")] = False,
    timeout: Annotated[float, typer.Option(help="connect timeout in seconds")] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Connect to a device and report uname, CPU, cores and features, and whether it fits its
    profile (exit 1 when it does not)."""
    from edgec.device import open_device, setup_logging
    from edgec.device.check import check_device

    setup_logging()
    with open_device(name, trust_new_host=trust_new_host, connect_timeout=timeout) as dev:
        report = check_device(dev)
    if as_json:
        print(json.dumps(report, sort_keys=True))
    else:
        t = Table(show_header=False, title=f"device {name} ({report['address']})")
        for k in ("profile", "host_key", "uname", "arch", "cpu", "cores", "exec_wrapper", "runs_binaries_as"):
            t.add_row(k.replace("_", " "), str(report.get(k) if report.get(k) is not None else "-"))
        feats = report["features"]
        t.add_row("features", f"{len(feats)} flags: {' '.join(feats[:16])}{' ...' if len(feats) > 16 else ''}")
        t.add_row("profile needs", " ".join(report["required_features"]) or "-")
        t.add_row("latency", f"{report['latency_ms']:.1f} ms")
        t.add_row("fits profile", "[green]yes[/]" if report["fits"] else "[red]no[/]")
        for p in report["problems"]:
            t.add_row("[red]problem[/]", escape(p))
        for n in report["notes"]:
            t.add_row("note", escape(n))
        out.print(t)
    if not report["fits"]:
        from edgec.errors import CheckFailed

        raise CheckFailed(f"device {name!r} does not fit profile {report['profile']}: {'; '.join(report['problems'])}")


def _us(x: float) -> str:
    return f"{x / 1000:.3f} ms" if x >= 10_000 else f"{x:.1f} µs" if x >= 10 else f"{x:.3f} µs"


def bench(
    target: Annotated[Path, typer.Argument(help="bundle directory, or an ONNX model to build first")],
    device: Annotated[Optional[str], typer.Option(
        "--device", "-d", help="registered device (with --local: a device profile, default host)")] = None,
    local: Annotated[bool, typer.Option("--local", help="run on this machine (qemu-user for ARM bundles)")] = False,
    runs: Annotated[int, typer.Option(help="timed runs (at least)")] = 50,
    warmup: Annotated[int, typer.Option(help="untimed runs first")] = 5,
    min_time: Annotated[float, typer.Option("--min-time", help="keep running for at least S seconds")] = 0.0,
    threads: Annotated[Optional[int], typer.Option(help="threads (default: the bundle's)")] = None,
    seed: Annotated[int, typer.Option(help="seed of the random inputs")] = 0,
    input: Annotated[Optional[list[str]], typer.Option(
        "--input", "-i", help="NAME=FILE.npy instead of random inputs (repeatable)")] = None,
    input_shape: Annotated[Optional[list[str]], typer.Option(
        "--input-shape", help="when building a model: NAME=D0,D1,... (repeatable)")] = None,
    baseline: Annotated[Optional[Path], typer.Option(
        "--baseline", help="compare with a stored `edgec bench --json` result")] = None,
    timeout: Annotated[float, typer.Option(help="seconds before the benchmark is killed")] = 300.0,
    trust_new_host: Annotated[bool, typer.Option(
        "--trust-new-host", help="record the device's host key if it is unknown")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object on stdout")] = False,
    profile: Annotated[bool, typer.Option(
        "--profile", help="per-layer times (a bundle built with --profile; a model is built so)")] = False,
    trace: Annotated[Optional[Path], typer.Option(
        "--trace", help="with --profile: Chrome trace file (default: profile-<name>-<device>.json; "
                        "a .png bar chart beside it when matplotlib is installed)")] = None,
) -> None:
    """Benchmark a bundle (or a model, built for the device's profile first) on a registered
    device over SSH, or with --local on this machine."""
    from edgec.device import get_device, open_device, setup_logging
    from edgec.device.bench import BenchOptions, bundle_or_model, compare_baseline
    from edgec.device.bench import bench as do_bench

    setup_logging()
    if not local and not device:
        raise EdgecError("bench: give --device NAME (a registered device, see `edgec devices list`) or --local")
    base = None
    if baseline is not None:
        try:
            base = json.loads(baseline.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise EdgecError(f"--baseline {baseline}: cannot read a JSON result ({exc})") from None
    if trace is not None and not profile:
        raise EdgecError("--trace needs --profile")
    if trace is not None and not trace.resolve().parent.is_dir():  # before the bench, not after it
        raise EdgecError(f"--trace {trace}: no such directory {trace.resolve().parent}")
    target_profile = (device or "host") if local else get_device(device).profile
    opts = BenchOptions(runs=runs, warmup=warmup, min_time_s=min_time, threads=threads, seed=seed,
                        timeout_s=timeout, profile=profile)
    build_kw: dict = {"input_shapes": parse_shapes(input_shape or [])} | ({"profile": True} if profile else {})
    with err.status("[bold]edgec bench[/]") as status, bundle_or_model(target, target_profile, **build_kw) as bundle:
        names = [t["name"] for t in bundle.manifest["inputs"]]
        feeds = dict(load_input(s, names) for s in input) if input else None
        status.update(f"[bold]edgec bench[/]: running on {'this machine' if local else device}")
        if local:
            result = do_bench(bundle, None, opts, feeds)
        else:
            with open_device(device, trust_new_host=trust_new_host) as dev:
                result = do_bench(bundle, dev, opts, feeds)
    stats = result.stats | (compare_baseline(result.stats, base) if base is not None else {})
    if result.profile is not None:
        from edgec.cli_profile import profile_table, write_outputs
        from edgec.device.profile_report import json_layers

        title = f"{bundle.name} on {stats['device']} ({stats['target']})"
        files = write_outputs(result.profile, trace or Path(f"profile-{bundle.name}-{stats['device']}.json"), title)
        err.print(f"trace: {escape(str(files[0]))}" + (f", chart: {escape(str(files[1]))}" if files[1] else
                                                       " (no chart: matplotlib is not installed)"),
                  highlight=False, soft_wrap=True)
        stats = {k: v for k, v in stats.items() if k != "profile"} | json_layers(result.profile) | {
            "trace": str(files[0]), "chart": str(files[1]) if files[1] else None}
        if not as_json:
            out.print(profile_table(result.profile, title))
    if as_json:
        print(json.dumps(stats, sort_keys=True))
        return
    t = Table("device", "target", "runs", "threads", "min", "median", "mean", "p90", title=f"edgec bench {target}")
    t.add_row(stats["device"], stats["target"], str(stats["runs"]), str(stats["threads"]),
              *(_us(stats[k]) for k in ("min_us", "median_us", "mean_us", "p90_us")))
    out.print(t)
    out.print(f"outputs checksum {stats['checksum']} ({stats['inputs']} inputs)", highlight=False)
    if base is not None:
        warn = "" if stats["same_model"] else " [yellow](different model!)[/]"
        out.print(f"baseline median {_us(stats['baseline_median_us'])} -> speed-up "
                  f"{stats['speedup_median']:.3f}x (min: {stats['speedup_min']:.3f}x){warn}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(devices_app, name="devices")
    app.command("bench")(bench)

"""The tuning farm on a local Ray instance (issue 20, acceptance 1): builds as Ray tasks, the
loopback sshd device and this machine as device actors; the same log semantics and resume as
the single-machine pool, and faults: a device actor killed mid-batch, build workers killed.
Every check counts log lines: nothing measured twice, nothing lost."""

from __future__ import annotations

import functools
import os
from collections import Counter
from pathlib import Path

import pytest

from edgec.tune.log import read_log
from edgec.tune.measure import MeasureOptions
from edgec.tune.tuner import TuneOptions, tune
from tests.remote.conftest import SSHD, assert_clean, cli, closed_port, entry, make_server, trust
from tests.tune.conftest import small_model

ray = pytest.importorskip("ray")

from edgec.tune.ray_actors import RunnerSpec, local_spec, ssh_spec  # noqa: E402 - needs ray
from edgec.tune.ray_farm import RayFarm  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OPTS = MeasureOptions(min_time_s=0.005, runs=5, warmup=1)


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory):  # noqa: ANN001, ANN201
    """One local Ray instance for the module (2 CPUs, no dashboard), with the build-crash hook
    of tests/tune/ray_hooks.py armed by token files in `crash_dir`."""
    crash_dir = tmp_path_factory.mktemp("crash")
    env = {"EDGEC_TEST_CRASH_DIR": str(crash_dir), "PYTHONPATH": str(REPO),
           "EDGEC_CACHE_DIR": os.environ.get("EDGEC_CACHE_DIR", str(tmp_path_factory.mktemp("objs")))}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": env, "worker_process_setup_hook": "tests.tune.ray_hooks.crash_builds"})
    yield crash_dir
    ray.shutdown()


def _tune(log: Path, specs: list[RunnerSpec], trials: int = 6, batch: int = 4, resume: bool = False) -> list:
    farm = RayFarm(specs, "host")
    try:
        return tune(small_model(), farm, log, "host", TuneOptions(trials=trials, batch=batch, measure=OPTS),
                    resume=resume)
    finally:
        farm.close()


def _once_each(recs: list[dict]) -> Counter:
    per_config = Counter((r["task"]["kernel"], r["config"]["index"]) for r in recs)
    assert max(per_config.values()) == 1, per_config
    return Counter(r["task"]["kernel"] for r in recs)


@pytest.mark.skipif(SSHD is None or os.geteuid() != 0, reason="needs sshd (openssh-server) and root")
def test_ssh_and_local_devices_log_and_resume(tmp_path: Path, ray_instance: Path, edgec_env: dict) -> None:
    """The loopback sshd device and this machine, each an actor; the log has one line per
    config, both devices measured; --resume continues append-only with nothing repeated."""
    server = make_server(tmp_path / "sshd")
    server.start()
    try:
        trust(server, edgec_env["EDGEC_KNOWN_HOSTS"])
        known = Path(edgec_env["EDGEC_KNOWN_HOSTS"]).read_text()
        specs = [ssh_spec(entry(server, "loop"), known, attempts=2, backoff_s=0.05), local_spec()]
        log = tmp_path / "farm.jsonl"
        reports = _tune(log, specs)
        first = read_log(log)
        assert len(log.read_text().splitlines()) == len(first) == 12
        assert {r["result"]["error"] for r in first} == {None}
        assert _once_each(first) == {"gemv": 6, "conv2d": 6}
        assert {r["device"] for r in first} <= {"loop", "local"} and len({r["device"] for r in first}) == 2
        assert all(r.trials == 6 and r.best_cost for r in reports)

        _tune(log, specs, trials=9, resume=True)
        final = read_log(log)
        assert [r["config"] for r in final[:12]] == [r["config"] for r in first]  # append-only
        assert _once_each(final) == {"gemv": 9, "conv2d": 9}
    finally:
        server.kill()


def test_device_actor_killed_mid_batch(tmp_path: Path, ray_instance: Path) -> None:
    """One device's actor process dies at its 2nd measurement: it is retired, its config goes to
    the other device; no config is lost, blamed or measured twice."""
    from tests.tune.ray_hooks import dying_local

    specs = [RunnerSpec("dying", functools.partial(dying_local, "dying", 2)), local_spec("steady")]
    log = tmp_path / "kill.jsonl"
    farm = RayFarm(specs, "host")
    try:
        tune(small_model(), farm, log, "host", TuneOptions(trials=6, batch=6, measure=OPTS))
        assert farm.retired == ["dying"]
    finally:
        farm.close()
    recs = read_log(log)
    assert len(log.read_text().splitlines()) == len(recs) == 12
    assert {r["result"]["error"] for r in recs} == {None}
    assert _once_each(recs) == {"gemv": 6, "conv2d": 6}
    assert Counter(r["device"] for r in recs)["dying"] == 1  # its first measurement, then it died


def test_build_worker_killed_is_rerun(tmp_path: Path, ray_instance: Path) -> None:
    """Two build workers are killed mid-build: Ray runs those builds again; the log is whole."""
    for k in range(2):
        (ray_instance / f"token-{k}").touch()
    log = tmp_path / "crash.jsonl"
    _tune(log, [local_spec()], trials=4)
    assert not list(ray_instance.glob("token-*")), "the hook did not kill a build"
    recs = read_log(log)
    assert {r["result"]["error"] for r in recs} == {None}
    assert _once_each(recs) == {"gemv": 4, "conv2d": 4}


def test_build_that_always_crashes_is_a_compile_error(tmp_path: Path, ray_instance: Path) -> None:
    """Every build kills its worker: each config is logged once as `compile` (worker failed),
    after Ray's retries; the run ends normally."""
    for k in range(200):
        (ray_instance / f"token-{k:03d}").touch()
    log = tmp_path / "always.jsonl"
    try:
        _tune(log, [local_spec()], trials=3, batch=3)
    finally:
        for t in ray_instance.glob("token-*"):
            t.unlink()
    recs = read_log(log)
    assert {r["result"]["error"] for r in recs} == {"compile"}
    assert all("build worker failed" in r["result"]["detail"] and r["device"] == "build" for r in recs)
    assert _once_each(recs) == {"gemv": 3, "conv2d": 3}


def test_cli_cluster_errors(tmp_path: Path, small_model_path: Path) -> None:
    """A bad --cluster value and an unreachable Ray address: one line, exit code 2."""
    log = str(tmp_path / "x.jsonl")
    assert_clean(cli("tune", str(small_model_path), "--device", "local", "--log", log, "--cluster", "spark"),
                 2, "--cluster 'spark'", "pool, ray, ray://HOST:PORT")
    assert_clean(cli("tune", str(small_model_path), "--device", "local", "--log", log,
                     "--cluster", f"ray://127.0.0.1:{closed_port()}", subprocess_=True), 2, "--cluster ray://")
    assert not Path(log).exists()


def test_cli_cluster_ray(tmp_path: Path, small_model_path: Path, ray_instance: Path) -> None:
    """`edgec tune --cluster ray` in a fresh process (its own local Ray instance, even with this
    module's running): finishes, logs every config once, prints nothing but the progress."""
    log = tmp_path / "cli.jsonl"
    proc = cli("tune", str(small_model_path), "--device", "local", "--device", "local", "--log", str(log),
               "--trials", "3", "--batch", "3", "--min-time", "0.005", "--cluster", "ray", "--report",
               subprocess_=True, env={"RAY_ADDRESS": ""})
    assert_clean(proc, 0, "best vs default")
    for noise in ("WARNING", "INFO", "Ray", "raylet", "worker.py"):  # Ray's own log lines
        assert noise not in proc.stderr, proc.stderr
    recs = read_log(log)
    assert {r["result"]["error"] for r in recs} == {None}
    assert _once_each(recs) == {"gemv": 3, "conv2d": 3}
    assert {r["device"] for r in recs} <= {"local", "local-2", "build"}


def test_node_check_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-node check behind `farm: node X gets no builds`: a node without the target's
    C compiler says so, with the versions that must match the driver's."""
    from edgec.tune.ray_actors import node_facts

    assert node_facts("host")["missing"] == []
    monkeypatch.setenv("EDGEC_CC_X86_64", "no-such-gcc")
    facts = node_facts("host")
    assert len(facts["missing"]) == 1 and "no-such-gcc" in facts["missing"][0]
    assert set(facts["versions"]) == {"edgec", "llvm"}

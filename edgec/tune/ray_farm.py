"""The tuning farm on Ray (`edgec tune --cluster ray|ray://HOST:PORT`; docs/tuning-farm.md).

- Every device is a Ray actor (edgec.tune.ray_actors.DeviceActor) that owns its runner (its SSH
  session) and measures one config at a time; it reconnects once when the device drops, as the
  single-machine pool does, and says `lost` when that fails.
- Every config is built by a Ray task on any node with a CPU (edgec.tune.ray_actors.build_config);
  Ray re-runs a build whose worker crashed (`max_retries`), and a build that still fails is that
  config's `compile` error.
- The driver (this module) owns the search and the log: results are recorded as they arrive.
  A device whose actor died, or that was lost, is retired and its config goes back to the
  queue for another device; with no device left the rest is `device_lost` and the batch raises
  `AllDevicesLost`, exactly as `DevicePool`.

Nothing here talks to the network itself: Ray does, between its own processes."""

from __future__ import annotations

import collections
import logging
import os
from dataclasses import dataclass, field

from edgec.errors import EdgecError
from edgec.tune.farm import Batch, Record, import_ray
from edgec.tune.measure import MeasureOptions, MeasureResult
from edgec.tune.pool import AllDevicesLost
from edgec.tune.ray_actors import DeviceActor, RunnerSpec, build_config, node_check, node_facts

log = logging.getLogger("edgec.tune")
BUILD_RETRIES = 2  # a build whose worker process died is run again this many times


def connect(cluster: str, env: dict[str, str] | None = None) -> bool:
    """Join (or start) the Ray instance `cluster` names. True when this call started it (and
    so should shut it down). `ray` = $RAY_ADDRESS if set, else a local instance."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    address = None if cluster == "ray" else cluster
    # (ray:// without the client extra: ray.init says to install ray[client], reported below)
    kw: dict = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR,
                "runtime_env": {"env_vars": dict(env or {})}}
    if address is None and not os.environ.get("RAY_ADDRESS"):
        kw["num_cpus"] = os.cpu_count() or 1
    try:
        ray.init(address=address, **kw)
    except Exception as exc:  # noqa: BLE001 - Ray raises many kinds for a bad or dead address
        raise EdgecError(f"--cluster {cluster}: cannot join the Ray cluster ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None
    return True


def forwarded_env() -> dict[str, str]:
    """Environment the workers need to see as the driver does (device registry, known hosts,
    toolchain overrides, log level); never key material (keys stay files on each node)."""
    keep = ("EDGEC_CONFIG_DIR", "EDGEC_KNOWN_HOSTS", "EDGEC_LOG", "EDGEC_CC_X86_64", "EDGEC_CC_AARCH64",
            "EDGEC_CC_ARMV7", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "EDGEC_CACHE_DIR", "EDGEC_NO_CACHE")
    return {k: os.environ[k] for k in keep if k in os.environ}


@dataclass
class _Device:
    name: str
    actor: object
    busy: bool = False


@dataclass
class _Item:
    index: int
    knobs: dict
    exe: object = None  # ObjectRef of the harness bytes


@dataclass
class NodeReport:
    node: str
    node_id: str
    cpus: float
    missing: list[str] = field(default_factory=list)
    versions: dict = field(default_factory=dict)


class RayFarm:
    """Builds on Ray tasks, measures on device actors. `close()` removes the actors (and shuts
    down the Ray instance it started)."""

    def __init__(self, specs: list[RunnerSpec], target: str, cluster: str = "ray", retries: int = 1,
                 build_fn: object = None, build_cpus: float = 1.0):
        """`build_fn`: a Ray remote function like `build_config` (the scale study's simulated
        builds); default: the real build. `build_cpus`: the CPUs a build task takes."""
        if not specs:
            raise EdgecError("no device to tune on")
        self.ray = import_ray()
        self.build_fn = build_fn or build_config
        self.build_cpus = build_cpus
        self._owns = connect(cluster, forwarded_env())
        self.target = target
        try:
            self.nodes = self.check_nodes()
            self._build_nodes = [n.node_id for n in self.nodes if not n.missing]
            self.devices = [_Device(s.name, DeviceActor.options(num_cpus=0, max_restarts=0).remote(s, retries))
                            for s in specs]
        except BaseException:
            self._shutdown()
            raise
        self.retired: list[str] = []
        self._rr = 0

    # -- nodes -------------------------------------------------------------------------------
    def check_nodes(self) -> list[NodeReport]:
        """Run the toolchain check on every live node with CPUs (builds go only where it passed).
        Raises when no node can build for the target."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ray = self.ray
        nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
        refs = [node_check.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
            n["NodeID"], soft=False)).remote(self.target) for n in nodes]
        reports = []
        ours = node_facts(self.target)["versions"]
        for n, r in zip(nodes, ray.get(refs)):
            rep = NodeReport(n.get("NodeManagerHostname", "?"), n["NodeID"], n["Resources"]["CPU"],
                             r["missing"], r["versions"])
            for k in ("edgec", "llvm"):  # another version would build other code than the build will
                if rep.versions.get(k) != ours.get(k):
                    rep.missing.append(f"{k} {rep.versions.get(k)} (the driver has {ours.get(k)})")
            reports.append(rep)
        if not any(not r.missing for r in reports):
            raise EdgecError("no Ray node can build for {}: {}".format(self.target, "; ".join(
                f"{r.node}: missing {', '.join(r.missing)}" for r in reports) or "no node with CPUs"))
        for r in reports:
            if r.missing:
                log.warning("ray node %s cannot build for %s (missing %s): no builds go there",
                            r.node, self.target, ", ".join(r.missing))
        return reports

    def _build(self, task: dict, index: int, knobs: dict, seed: int) -> tuple:
        opts: dict = {"num_cpus": self.build_cpus, "max_retries": BUILD_RETRIES, "num_returns": 2}
        if len(self._build_nodes) < len(self.nodes):  # keep builds off nodes without toolchains
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            node = self._build_nodes[self._rr % len(self._build_nodes)]
            self._rr += 1
            opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=False)
        return self.build_fn.options(**opts).remote(task, index, knobs, seed)

    # -- a batch -----------------------------------------------------------------------------
    def run_batch(self, task: dict, batch: Batch, opts: MeasureOptions, record: Record) -> None:
        ray = self.ray
        from ray.exceptions import RayActorError, RayTaskError, WorkerCrashedError

        builds = {}  # meta ref -> (exe ref, index, knobs)
        for index, knobs in batch:
            meta, exe = self._build(task, index, knobs, opts.seed)
            builds[meta] = (exe, index, knobs)
        ready: collections.deque[_Item] = collections.deque()
        running: dict = {}  # measure ref -> (_Device, _Item)
        while builds or ready or running:
            self._dispatch(task, ready, running, opts)
            if not self.devices:  # no device left: what is not measured is device_lost
                self._lose_rest(builds, ready, running, record)
                break
            done, _ = ray.wait([*builds, *running], num_returns=1)
            ref = done[0]
            if ref in builds:
                exe, index, knobs = builds.pop(ref)
                try:
                    err, detail = ray.get(ref)
                except (WorkerCrashedError, RayTaskError) as exc:  # crashed BUILD_RETRIES + 1 times
                    err, detail = "compile", f"build worker failed: {type(exc).__name__}"
                if err:
                    record(MeasureResult(index, knobs, [], err, detail, "build"))
                else:
                    ready.append(_Item(index, knobs, exe))
                continue
            dev, item = running.pop(ref)
            dev.busy = False
            try:
                out = ray.get(ref)
            except RayActorError as exc:
                self._retire(dev, f"actor died: {str(exc).splitlines()[0][:160]}")
                ready.appendleft(item)
                continue
            if isinstance(out, str):  # the device is lost for good (reconnect failed)
                self._retire(dev, out)
                ready.appendleft(item)
                continue
            record(out)
        if not self.devices:
            raise AllDevicesLost(f"all devices lost ({', '.join(self.retired)}); run again with --resume to finish")

    def _dispatch(self, task: dict, ready: collections.deque, running: dict, opts: MeasureOptions) -> None:
        for dev in self.devices:
            if not ready:
                return
            if not dev.busy:
                item = ready.popleft()
                dev.busy = True
                running[dev.actor.measure.remote(task, item.index, item.knobs, item.exe, opts)] = (dev, item)

    def _retire(self, dev: _Device, why: str) -> None:
        log.warning("%s: device retired: %s", dev.name, why)
        self.devices.remove(dev)
        self.retired.append(dev.name)
        try:
            self.ray.kill(dev.actor)
        except Exception:  # noqa: BLE001 - already dead
            pass

    def _lose_rest(self, builds: dict, ready: collections.deque, running: dict, record: Record) -> None:
        why = f"no device left ({', '.join(self.retired)})"[:200]
        for _, index, knobs in builds.values():
            record(MeasureResult(index, knobs, [], "device_lost", why))
        for item in [*ready, *(i for _, i in running.values())]:
            record(MeasureResult(item.index, item.knobs, [], "device_lost", why))
        for ref in builds:
            self.ray.cancel(ref, force=True)
        builds.clear()
        ready.clear()
        running.clear()

    def close(self) -> None:
        for dev in self.devices:
            try:
                self.ray.get(dev.actor.close.remote(), timeout=30)
            except Exception:  # noqa: BLE001 - a dead actor has nothing to close
                pass
            self.ray.kill(dev.actor)
        self.devices = []
        self._shutdown()

    def _shutdown(self) -> None:
        if self._owns and self.ray.is_initialized():
            self.ray.shutdown()

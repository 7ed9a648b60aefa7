"""`edgec.load(bundle)`: run a bundle's compiled library from Python (ctypes, no other engine).

Host bundles load `lib/lib<name>.so` in-process. Bundles for other CPUs run through the
bundle's own example driver, cross-linked statically and executed with the profile's exec
wrapper (qemu-user), exchanging raw tensor files.
"""

from __future__ import annotations

import ctypes
import os
import platform
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from edgec.errors import RunError, public_api
from edgec.packager.bundle import Bundle, read_manifest, verify_bundle
from edgec.packager.manifest import BundleError
from edgec.packager.status import STATUS_TEXT
from edgec.targets import get_profile
from edgec.toolchain import find_toolchain, run_binary

# the runtime's own messages, read from edgec_runtime.c (edgec/packager/status.py)
STATUS = dict(enumerate(STATUS_TEXT))


def _check_inputs(manifest: dict, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    if not isinstance(feeds, Mapping):
        raise RunError(f"inputs must be a dict of name -> array, not {type(feeds).__name__}")
    names = [t["name"] for t in manifest["inputs"]]
    unknown = sorted(set(feeds) - set(names))
    missing = [n for n in names if n not in feeds]
    if unknown or missing:
        raise RunError(f"inputs do not match the model: unknown {unknown}, missing {missing}; "
                       f"the model's inputs are {names}")
    arrays = []
    for t in manifest["inputs"]:
        a = np.asarray(feeds[t["name"]])
        if a.dtype.kind not in "biuf":
            raise RunError(f"input {t['name']!r} has dtype {a.dtype}, the model expects {t['dtype']}")
        if tuple(a.shape) != tuple(t["shape"]):
            raise RunError(f"input {t['name']!r} has shape {list(a.shape)}, the model expects {t['shape']}")
        want = np.dtype(t["dtype"])
        if a.dtype != want:
            if not np.can_cast(a.dtype, want, casting="same_kind"):
                raise RunError(f"input {t['name']!r} has dtype {a.dtype}, the model expects {want}")
            a = a.astype(want)
        arrays.append(np.ascontiguousarray(a))
    return arrays


class _TensorInfo(ctypes.Structure):  # edgec_tensor_info in runtime_c/edgec_runtime.h
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int), ("ndim", ctypes.c_int32),
                ("shape", ctypes.c_int64 * 8), ("bytes", ctypes.c_size_t), ("arena_offset", ctypes.c_size_t),
                ("scale", ctypes.c_float), ("zero_point", ctypes.c_int32)]


class _ModelInfo(ctypes.Structure):  # edgec_model_info
    _fields_ = [("name", ctypes.c_char_p), ("edgec_version", ctypes.c_char_p), ("num_inputs", ctypes.c_int32),
                ("num_outputs", ctypes.c_int32), ("inputs", ctypes.POINTER(_TensorInfo)),
                ("outputs", ctypes.POINTER(_TensorInfo)), ("arena_bytes", ctypes.c_size_t),
                ("weights", ctypes.c_void_p), ("weight_bytes", ctypes.c_size_t), ("weights_adler32", ctypes.c_uint32),
                ("graph_run", ctypes.c_void_p), ("max_threads", ctypes.c_int32)]


def _check_against_library(lib: ctypes.CDLL, m: dict) -> None:
    """manifest.json is not covered by its own sha256 list: the sizes the runner trusts (arena,
    tensor shapes and bytes) must equal the metadata compiled into the verified library."""
    info = _ModelInfo.in_dll(lib, f"{m['name']}_info")
    same = (info.name == m["name"].encode() and info.arena_bytes == m["arena_bytes"]
            and info.num_inputs == len(m["inputs"]) and info.num_outputs == len(m["outputs"]))
    for table, ts in ((info.inputs, m["inputs"]), (info.outputs, m["outputs"])):
        for k, t in enumerate(ts if same else []):
            c = table[k]
            same = same and (c.name == t["name"].encode("utf-8", "surrogatepass") and c.bytes == t["bytes"]
                             and c.arena_offset == t["arena_offset"] and c.ndim == len(t["shape"])
                             and list(c.shape[:c.ndim]) == list(t["shape"]))
    if not same:
        raise BundleError("manifest.json does not match the metadata compiled into the bundle's library "
                          "(edited or from another build); refusing to run it")


class Runner:
    """In-process runner for bundles this machine can execute natively."""

    def __init__(self, bundle: Bundle, num_threads: int | None = None):
        self.bundle = bundle
        m = bundle.manifest
        self.name = m["name"]
        try:
            self.lib = ctypes.CDLL(str(bundle.shared_library))
        except OSError as exc:
            raise BundleError(f"cannot load {bundle.shared_library}: {exc}") from None
        p = self.name
        if not hasattr(self.lib, f"{p}_info"):
            raise BundleError(f"{bundle.shared_library} does not define model {p!r}")
        _check_against_library(self.lib, m)
        getattr(self.lib, f"{p}_init").restype = ctypes.c_int
        self.lib[f"{p}_verify_weights"].restype = ctypes.c_int
        self.lib[f"{p}_deinit"].restype = ctypes.c_int
        self.lib.edgec_ctx_size.restype = ctypes.c_size_t
        self._arena_raw = np.zeros(m["arena_bytes"] + 64, np.uint8)
        start = (-self._arena_raw.ctypes.data) % 64
        self.arena = self._arena_raw[start:start + m["arena_bytes"]]
        # The ctx is opaque here (it embeds the thread pool): size it from the library itself.
        self.ctx = ctypes.create_string_buffer(self.lib.edgec_ctx_size())
        if num_threads is None:
            opts = m.get("build_options")
            num_threads = opts.get("threads", 1) if isinstance(opts, dict) else 1
        if not isinstance(num_threads, int) or isinstance(num_threads, bool) or not 1 <= num_threads <= 64:
            raise RunError(f"num_threads must be an integer from 1 to 64, not {num_threads!r}")
        self.num_threads = num_threads
        self._call("init", ctypes.byref(self.ctx), ctypes.c_void_p(self.arena.ctypes.data),
                   ctypes.c_size_t(m["arena_bytes"]), ctypes.c_int(num_threads))
        self._open = True
        self._ticks_per_s: int | None = None
        # The per-call path, bound once: ctypes looks a function up by name on every attribute
        # access, converts untyped arguments by inspection and `array.ctypes.data` alone costs
        # 1 us (37 us per run before, for a 5 us model). Inputs and outputs are numpy views of
        # the arena at the addresses the runtime reports (edgec_input_ptr / output_ptr, its
        # zero-copy API): a run is two numpy copies around one typed call.
        self._run = self.lib[f"{p}_run"]
        self._run.argtypes = [ctypes.c_void_p]
        self._ctx_addr = ctypes.addressof(self.ctx)
        self._inputs = [(t["name"], tuple(t["shape"]), np.dtype(t["dtype"])) for t in m["inputs"]]
        self._outputs = [(t["name"], tuple(t["shape"]), np.dtype(t["dtype"])) for t in m["outputs"]]
        self._in_views = self._views("input_ptr", m["inputs"])
        self._out_views = self._views("output_ptr", m["outputs"])

    def _views(self, fn: str, tensors: list[dict]) -> list[np.ndarray]:
        ptr = self.lib[f"{self.name}_{fn}"]
        ptr.restype, ptr.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_int]
        base = self.arena.ctypes.data
        views = []
        for k, t in enumerate(tensors):
            off = (ptr(self._ctx_addr, k) or 0) - base
            if not 0 <= off <= len(self.arena) - t["bytes"]:
                raise BundleError(f"{self.name}_{fn}({k}) points outside the arena")
            views.append(self.arena[off:off + t["bytes"]].view(np.dtype(t["dtype"])).reshape(t["shape"]))
        return views

    def close(self) -> None:
        """Join the bundle's worker threads (if any)."""
        if getattr(self, "_open", False):
            self._open = False
            self.lib[f"{self.name}_deinit"](ctypes.byref(self.ctx))

    def __del__(self) -> None:
        self.close()

    def _call(self, fn: str, *args: object) -> None:
        self._check(fn, getattr(self.lib, f"{self.name}_{fn}")(*args))

    def _check(self, fn: str, status: int) -> None:
        if status != 0:
            raise RunError(f"{self.name}_{fn} failed: {STATUS.get(status, status)}")

    @public_api
    def verify_weights(self) -> None:
        self._call("verify_weights")

    @public_api
    def profile(self) -> list[dict]:
        """A bundle built with `--profile`: one entry per kernel in call order, the manifest's
        layer (name, op, shape, macs, symbol) plus `calls`, `ticks` and `seconds` summed since
        init or the last `reset_profile()` (docs/profiling.md)."""
        layers = self._profile_layers()
        rows = np.zeros((len(layers), 2), np.uint64)  # edgec_profile_entry: ticks, calls
        fn = self.lib[f"{self.name}_profile"]
        fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32], ctypes.c_int
        self._check("profile", fn(self._ctx_addr, rows.ctypes.data, len(layers)))
        if self._ticks_per_s is None:  # x86: a ~20 ms calibration of the TSC, once
            tps = self.lib[f"{self.name}_profile_ticks_per_second"]
            tps.restype = ctypes.c_uint64
            self._ticks_per_s = int(tps()) or None
        return [{**layer, "calls": int(c), "ticks": int(t),
                 "seconds": int(t) / self._ticks_per_s if self._ticks_per_s else None}
                for layer, (t, c) in zip(layers, rows)]

    @public_api
    def reset_profile(self) -> None:
        """Zero the profile table (`init` starts from zero)."""
        self._profile_layers()
        fn = self.lib[f"{self.name}_profile_reset"]
        fn.argtypes, fn.restype = [ctypes.c_void_p], ctypes.c_int
        self._check("profile_reset", fn(self._ctx_addr))

    def _profile_layers(self) -> list[dict]:
        prof = self.bundle.manifest.get("profile")
        layers = prof.get("layers") if isinstance(prof, dict) else None
        if not isinstance(layers, list) or not hasattr(self.lib, f"{self.name}_profile"):
            raise RunError(f"bundle {self.bundle.path} was built without --profile (rebuild with "
                           "`edgec build --profile`)")
        if ctypes.c_int32.in_dll(self.lib, f"{self.name}_profile_info").value != len(layers):
            raise BundleError("manifest.json's profile layers do not match the bundle's library")
        return layers

    def _feed(self, feeds: dict[str, np.ndarray]) -> None:
        """Copy the inputs into the arena: straight from the caller's arrays when they have the
        model's shapes (a same-kind dtype is converted in the copy), else through
        `_check_inputs` and its messages."""
        if type(feeds) is dict and len(feeds) == len(self._inputs):
            for (name, shape, dtype), view in zip(self._inputs, self._in_views):
                a = feeds.get(name)
                if type(a) is not np.ndarray or a.shape != shape or (
                        a.dtype != dtype and not np.can_cast(a.dtype, dtype, casting="same_kind")):
                    break  # (inputs copied so far are copied again below)
                np.copyto(view, a, casting="same_kind")
            else:
                return
        for a, view in zip(_check_inputs(self.bundle.manifest, feeds), self._in_views):
            np.copyto(view, a)

    def _execute(self) -> None:
        self._check("run", self._run(self._ctx_addr))

    @public_api
    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._feed(feeds)
        self._execute()
        return {name: view.copy() for (name, _, _), view in zip(self._outputs, self._out_views)}

    @public_api
    def run_into(self, feeds: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> None:
        """`run`, writing the outputs into the caller's arrays (`outputs`: name -> an array of
        the output's dtype and shape, for every output): no allocation."""
        if type(outputs) is not dict or len(outputs) != len(self._outputs):
            raise RunError(f"outputs must be a dict with an array for each of {[o[0] for o in self._outputs]}")
        dst = []
        for name, shape, dtype in self._outputs:
            a = outputs.get(name)
            if type(a) is not np.ndarray or a.dtype != dtype or a.shape != shape or not a.flags.writeable:
                raise RunError(f"output {name!r} needs a writable {dtype} array of shape {list(shape)}")
            dst.append(a)
        self._feed(feeds)
        self._execute()
        for a, view in zip(dst, self._out_views):
            np.copyto(a, view)


class EmulatedRunner:
    """Runs a cross-compiled bundle through its example driver (qemu-user for ARM)."""

    def __init__(self, bundle: Bundle):
        self.bundle = bundle
        self.target = get_profile(bundle.manifest["device"])
        self._dir = Path(tempfile.mkdtemp(prefix="edgec-run-"))
        tc = find_toolchain(self.target)
        name = bundle.name
        tc.link_executable("main", [str(bundle.path / "examples" / "main.c"), str(bundle.static_library)],
                           self._dir, [str(bundle.path / "include")], static=True)
        self.exe = self._dir / "main"
        self._name = name

    @public_api
    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        m = self.bundle.manifest
        args = []
        for k, a in enumerate(_check_inputs(m, feeds)):
            f = self._dir / f"in{k}.bin"
            f.write_bytes(a.tobytes())
            args.append(str(f))
        outs = [self._dir / f"out{k}.bin" for k in range(len(m["outputs"]))]
        proc = run_binary(self.target, [str(self.exe), *args, *map(str, outs)])
        if proc.returncode != 0:
            raise RunError(f"bundle driver failed (exit {proc.returncode}): {proc.stderr.decode(errors='replace')[:500]}")
        return {t["name"]: np.frombuffer(f.read_bytes(), np.dtype(t["dtype"])).reshape(t["shape"])
                for t, f in zip(m["outputs"], outs)}

    @public_api
    def profile(self) -> list[dict]:
        raise RunError("profile() reads the table in this process; for a bundle of another CPU use "
                       "`edgec bench --profile` (locally under qemu, or on the device)")

    reset_profile = profile

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "_dir", ""), ignore_errors=True)


def _native(device_arch: str) -> bool:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine) == device_arch


@public_api
def load(bundle_dir: str | Path, num_threads: int | None = None, verify: bool = True) -> Runner | EmulatedRunner:
    """Open a bundle to run it. Every file is checked against the manifest's sha256 list first
    (`verify=False` skips that, for a bundle you rebuilt yourself); the library that gets loaded
    or linked must be on that list."""
    if not isinstance(bundle_dir, (str, Path)):
        raise RunError(f"bundle_dir must be a path, not {type(bundle_dir).__name__}")
    if not isinstance(verify, bool):
        raise RunError(f"verify must be True or False, not {type(verify).__name__}")
    path = Path(bundle_dir).resolve()
    manifest = read_manifest(path)
    bundle = Bundle(path, manifest)
    native = _native(manifest["target"]["arch"]) and bundle.shared_library.is_file()
    if verify:
        used = [bundle.shared_library] if native else [bundle.static_library, path / "examples" / "main.c"]
        rels = [os.path.relpath(p, path) for p in used]  # a hostile manifest may point outside
        verify_bundle(path, manifest, [Path(r).as_posix() for r in rels])
    if native:
        return Runner(bundle, num_threads)
    return EmulatedRunner(bundle)

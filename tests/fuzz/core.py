"""The fuzz harness's core: cases, results, and running one case where a crash, a hang or an
escaping exception is classified instead of taking the campaign down.

Classes (exactly one per case):
- ok:          accepted and, where onnxruntime runs the model too, the outputs agree
- clean_error: an EdgecError from the API, or exit 1/2 with a short stderr from the CLI
- traceback:   any other exception; also an InternalError (edgec's last-resort wrapper of an
               unexpected exception: a bug) and "out of memory" (a limit edgec should have
               checked); "Traceback" in CLI stderr; a CLI exit code other than 0/1/2
- crash:       the process died from a signal
- hang:        the case did not finish within its timeout
- wrong:       accepted but the outputs differ from onnxruntime's, or accepted what onnxruntime
               and the ONNX checker both refuse (reason "accepted_invalid"), or a bundle edgec
               built that edgec then refuses to run
- security:    a payload ran (a marker file exists), a user's file was changed or deleted, the
               library exports foreign symbols, or a tampered bundle was loaded and run
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import resource
import select
import signal
import struct
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLASSES = ("ok", "clean_error", "traceback", "crash", "hang", "wrong", "security")
FAILING = frozenset({"traceback", "crash", "hang", "security"})
MARKER = "EDGEC_FUZZ_PWNED"  # payloads try to create a file with exactly this name
# A payload's command: the marker lands in the case's directory, whatever the cwd it runs in.
MARKER_CMD = "touch ${EDGEC_FUZZ_MARKER_DIR:-.}/" + MARKER
MEMORY_LIMIT = (
    4 << 30
)  # address space of a case: a hostile model meets MemoryError, not the OOM killer
DEFAULT_TIMEOUT = 60.0
_MAX_CLEAN_STDERR = (20, 4000)  # lines, characters: more is not "one line" of error


@dataclass
class Result:
    cls: str
    reason: str = ""
    summary: str = ""
    data: dict = field(default_factory=dict)  # child -> parent (feeds, outputs); never reported

    def __post_init__(self) -> None:
        assert self.cls in CLASSES, self.cls


@dataclass
class Case:
    """One fuzz case. `run` executes in a forked child whose cwd is the case's own directory;
    `prepare` and `check` run in the parent before and after it (`check` may override the
    result: it sees files a crashed child left behind); `oracle` runs in the parent (it forks
    again itself) when `run` returned ok."""

    id: str
    family: str
    mutation: str
    detail: str
    run: Callable[[Path], Result]
    prepare: Callable[[Path], None] | None = None
    check: Callable[[Path, Result], Result] | None = None
    oracle: Callable[[Path, Result], Result] | None = None
    timeout: float = DEFAULT_TIMEOUT


def one_line(text: object, limit: int = 200) -> str:
    """A message's first non-empty line, non-printable characters escaped, cut to `limit`."""
    lines = [ln for ln in str(text).splitlines() if ln.strip()]
    line = lines[0].strip() if lines else ""
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)
    return line if len(line) <= limit else line[:limit] + "..."


def last_line(text: str, limit: int = 200) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return one_line(lines[-1], limit) if lines else ""


def classify_exception(exc: BaseException) -> Result:
    """An exception that left an edgec API call."""
    from edgec.errors import EdgecError, InternalError

    text = f"{type(exc).__name__}: {one_line(exc)}"
    if isinstance(exc, InternalError):
        return Result("traceback", "internal_error", text)
    if isinstance(exc, EdgecError):
        if str(exc).startswith("out of memory"):
            return Result("traceback", "memory_error", text)
        return Result("clean_error", "", text)
    where = ""
    tb = traceback.extract_tb(exc.__traceback__)
    if tb:
        where = f" [{Path(tb[-1].filename).name}:{tb[-1].lineno} {tb[-1].name}]"
    edgec_dir = str(Path(sys.modules["edgec"].__file__).parent) if "edgec" in sys.modules else "?"
    if not any(f.filename.startswith(edgec_dir) for f in tb):  # never reached edgec: our bug
        return Result("traceback", "harness", text + where)
    return Result("traceback", type(exc).__name__, text + where)


def classify_cli(returncode: int | None, stderr: str, timed_out: bool = False) -> Result:
    """A finished (or killed) `edgec` process."""
    if timed_out or returncode is None:
        return Result("hang", "timeout", last_line(stderr) or "no output")
    if returncode < 0:
        return Result("crash", _signal_name(-returncode), last_line(stderr) or "no output")
    if "Traceback" in stderr:
        return Result("traceback", "traceback_in_stderr", last_line(stderr))
    if returncode == 0:
        return Result("ok", "", "")
    if returncode not in (1, 2):
        return Result("traceback", f"exit_{returncode}", last_line(stderr) or f"exit {returncode}")
    text = stderr.strip()
    if "internal error" in text:
        return Result("traceback", "internal_error", last_line(text))
    if "out of memory" in text:
        return Result("traceback", "memory_error", last_line(text))
    if len(text.splitlines()) > _MAX_CLEAN_STDERR[0] or len(text) > _MAX_CLEAN_STDERR[1]:
        return Result("traceback", "long_stderr", last_line(text))
    return Result("clean_error", "", last_line(text) or f"exit {returncode}")


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def limit_resources() -> None:
    """In a case's process: bounded memory, no core files."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = MEMORY_LIMIT if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _child_main(fn: Callable[[], Result], cwd: Path, wfd: int) -> None:
    os.setsid()  # its own process group: a timeout kills compilers and CLI children too
    os.chdir(cwd)
    os.environ["EDGEC_FUZZ_MARKER_DIR"] = str(cwd)
    log = os.open(cwd / "child.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    faulthandler.disable()  # pytest's handler writes to the terminal: a crash is our result
    limit_resources()
    try:
        res = fn()
        if not isinstance(res, Result):
            res = Result(
                "traceback", "harness", f"case returned {type(res).__name__}, not a Result"
            )
    except BaseException as exc:  # noqa: BLE001 - classified for the parent
        res = classify_exception(exc)
    try:
        payload = pickle.dumps(res)
    except Exception as exc:  # noqa: BLE001
        payload = pickle.dumps(Result(res.cls, res.reason, res.summary + f" (data: {exc})"))
    view = memoryview(struct.pack("<Q", len(payload)) + payload)
    while view:
        view = view[os.write(wfd, view) :]


def _read_message(fd: int, deadline: float) -> bytes | None:
    """The child's length-prefixed message, or None on timeout / EOF before a full message."""
    buf = b""
    while True:
        if len(buf) >= 8 and len(buf) - 8 >= struct.unpack("<Q", buf[:8])[0]:
            return buf[8:]
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return None
        buf += chunk


def _wait(pid: int, deadline: float) -> int | None:
    """waitpid until `deadline`; the status, or None if the child is still alive."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.01)


def _kill_group(pgid: int) -> None:
    """SIGKILL the process group this harness created for one case (its leader's id)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_forked(fn: Callable[[], Result], timeout: float, cwd: Path) -> Result:
    """fn() in a forked child (own process group, cwd, memory limit, output to cwd/child.log),
    classified: its Result, its exception, a signal (crash) or the timeout (hang)."""
    sys.stdout.flush()
    sys.stderr.flush()
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            os.close(rfd)
            _child_main(fn, cwd, wfd)
        except BaseException:  # noqa: BLE001
            code = 70
        os._exit(code)
    os.close(wfd)
    deadline = time.monotonic() + timeout
    try:
        payload = _read_message(rfd, deadline)
    finally:
        os.close(rfd)
    status = _wait(pid, deadline + 5 if payload is not None else deadline)
    if status is None:
        _kill_group(pid)
        os.kill(pid, signal.SIGKILL)  # not reaped yet: the id is still our child's
        os.waitpid(pid, 0)
        if payload is None:
            return Result("hang", "timeout", f"no result within {timeout:g} s" + _log_tail(cwd))
    else:
        _kill_group(pid)  # leftovers of the case (a CLI child, a compiler) end with it
    if status is not None and os.WIFSIGNALED(status):
        sig = _signal_name(os.WTERMSIG(status))
        return Result("crash", sig, f"killed by {sig}" + _log_tail(cwd))
    if payload is None:
        code = os.waitstatus_to_exitcode(status) if status is not None else None
        return Result(
            "traceback",
            "no_result",
            f"the case process exited ({code}) without a "
            "result (sys.exit or os._exit inside edgec?)" + _log_tail(cwd),
        )
    return pickle.loads(payload)


def _log_tail(cwd: Path) -> str:
    try:
        text = (cwd / "child.log").read_text(errors="replace")
    except OSError:
        return ""
    line = last_line(text, 150)
    return f": {line}" if line else ""


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEC_DEBUG")}
    env.pop("EDGEC_NO_SANDBOX", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = (
        root + os.pathsep + env.get("PYTHONPATH", "") if env.get("PYTHONPATH") else root
    )
    return env


# The `edgec` command as a fresh install has it: typer vendors click, so `import click` must not
# be needed anywhere on the CLI's paths (an error path that imported it crashed once).
_EDGEC_WITHOUT_CLICK = ("import sys; sys.modules['click'] = None; sys.argv[0] = 'edgec'; "
                        "from edgec.cli import main; main()")


def run_cli(
    args: Sequence[str], cwd: Path, timeout: float, argv0: Sequence[str] | None = None
) -> tuple[Result, str, str]:
    """`edgec ARGS` (or `argv0 ARGS`) in `cwd`, without EDGEC_DEBUG and without click: its
    class, stdout and stderr."""
    cmd = [*(argv0 or [sys.executable, "-c", _EDGEC_WITHOUT_CLICK]), *args]
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=limit_resources,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        out, err = proc.communicate()
        return classify_cli(None, err.decode(errors="replace"), True), "", ""
    text_err = err.decode(errors="replace")
    return classify_cli(proc.returncode, text_err), out.decode(errors="replace"), text_err


def marker_found(case_dir: Path) -> Path | None:
    """A file a payload created: exactly MARKER (or MARKER.npy, from a traversing output name)."""
    names = {MARKER, MARKER + ".npy"}
    for p in case_dir.rglob("*"):
        if p.name in names:
            return p
    return None


def snapshot(d: Path) -> dict[str, bytes]:
    """Relative path -> content of every regular file (and symlink target) under `d`."""
    snap: dict[str, bytes] = {}
    for p in sorted(d.rglob("*")):
        rel = p.relative_to(d).as_posix()
        if p.is_symlink():
            snap[rel] = b"symlink:" + os.readlink(p).encode()
        elif p.is_file():
            snap[rel] = p.read_bytes()
    return snap


def snapshot_problem(d: Path, before: dict[str, bytes]) -> str | None:
    """None if every file of `before` is still under `d` with the same content."""
    if not before:
        return None
    after = snapshot(d) if d.is_dir() else {}
    gone = sorted(set(before) - set(after))
    changed = sorted(k for k in before if k in after and after[k] != before[k])
    if gone or changed:
        return f"user files deleted {gone[:3]} / changed {changed[:3]}"
    return None

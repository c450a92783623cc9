"""A sidecar's config, validated in a short-lived child process of the same Python.

Validating a config builds the schema's validators: pydantic's for every model of every
section, several MiB that a sidecar would hold for its whole life in every cage. So
both sidecars run the check in a child (`MODULE`'s `main` with the file) and read its
answer back: the DNS sidecar a plan of a dozen values (dns/plan.py), the proxy the
validated models themselves (proxy/checked_config.py). The child runs the same
`load_config` as before, so a bad config fails the sidecar with the same error, word
for word (`error_answer` there, `raised_error` here).

A sidecar's first check, the one before READY=1, is a fork of the sidecar itself
(`forked_check`): Python's start and the modules both already hold are then not paid
twice, about a third of the child's CPU, while both sidecars and both checks want the
two cores of a starting cage (docs/cages.md). The child runs the module's `main` and
leaves with `os._exit`, so nothing of the sidecar's own runs in it; the sidecar's
memory does not grow. A reload's check, in a sidecar that may hold threads by then,
starts a new Python as before.

Before either, a sidecar's first check looks for the answer `cage create` stored ahead
for the same bytes by the same code (checked_ahead.py): then no child runs at all.
"""

from __future__ import annotations

import gc
import importlib
import os
import selectors
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from agentcage import errors
from agentcage.checked_ahead import stored_answer
from agentcage.errors import AgentcageError, ConfigError

_SELF = "/proc/self/exe"
_THREADS = "/proc/self/task"


class Check(Protocol):
    """A running check: `subprocess.Popen`'s part of it that `finish_check` uses."""

    @property
    def returncode(self) -> int | Any: ...
    def communicate(
        self, input: None = None, timeout: float | None = None
    ) -> tuple[bytes, bytes]: ...
    def kill(self) -> None: ...


def start_check(
    module: str,
    path: Path,
    *,
    fork: bool = False,
    ahead: Callable[[bytes], bool] | None = None,
) -> Check:
    """The check of `path` by `module`'s `main`, running; OSError if it cannot start.

    `ahead`: first look for the answer stored ahead for `path` (`stored_answer`); if
    `ahead`, the caller's own reader of a child's output, reads it as an answer, it is
    the check's output and nothing runs. Else, and without `ahead` (a reload, which must
    see a changed file however it came), the check runs:
    `fork`: in a fork of this process when it has a single thread (`forked_check`),
    else, or without it, in `python -m module path` with this process's Python and
    import path.
    """
    if ahead is not None:
        out = stored_answer(path, module)
        if out is not None and _reads(ahead, out):
            return AnsweredCheck(out)
    if fork and _single_threaded():
        return forked_check(module, path)
    # The child imports what this process imports: its path, whichever way it started.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    argv = ["-m", module, str(path)]
    try:
        return _popen(sys.executable, argv, env)
    except PermissionError:
        # Started by a launcher that could reach the interpreter's path (setpriv as
        # root) while this user cannot: the running binary itself still can be.
        return _popen(_SELF, argv, env)


def _reads(reader: Callable[[bytes], bool], out: bytes) -> bool:
    try:
        return reader(out)
    except Exception:  # whatever a reader of a stored answer trips on: the check runs
        return False


def _single_threaded() -> bool:
    """Whether this process runs one thread (fork copies only the caller's: a lock
    another thread held would stay held in the child); False where that cannot be read."""
    try:
        return len(os.listdir(_THREADS)) == 1
    except OSError:
        return False


def _popen(executable: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [executable, *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


class AnsweredCheck:
    """A check answered ahead: read like a child that printed `out` and exited 0."""

    returncode = 0

    def __init__(self, out: bytes) -> None:
        self._out = out

    def communicate(self, input: None = None, timeout: float | None = None) -> tuple[bytes, bytes]:
        return self._out, b""

    def kill(self) -> None:
        pass  # nothing runs


class ForkedCheck:
    """A check running in a fork of this process, read like a `subprocess.Popen`."""

    def __init__(self, pid: int, out: int, err: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._read = {out: bytearray(), err: bytearray()}
        self._open = {out, err}

    def communicate(self, input: None = None, timeout: float | None = None) -> tuple[bytes, bytes]:
        """Both outputs once the child closed them, and its exit; TimeoutExpired if that
        takes longer than `timeout` (the child then still runs: `kill` it)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            for fd in self._open:
                selector.register(fd, selectors.EVENT_READ)
            while self._open:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise subprocess.TimeoutExpired(f"check {self.pid}", timeout or 0.0)
                for key, _ in selector.select(left):
                    fd = int(key.fd)
                    chunk = os.read(fd, 1 << 16)
                    self._read[fd] += chunk
                    if not chunk:
                        selector.unregister(fd)
                        self._close(fd)
        self._wait()
        out, err = self._read.values()
        return bytes(out), bytes(err)

    def kill(self) -> None:
        if self.returncode is None:
            os.kill(self.pid, signal.SIGKILL)
        for fd in list(self._open):
            self._close(fd)
        self._wait()

    def _close(self, fd: int) -> None:
        self._open.discard(fd)
        os.close(fd)

    def _wait(self) -> None:
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)


def forked_check(module: str, path: Path) -> ForkedCheck:
    """`module`'s `main([path])` in a fork of this process: its output and error output
    on pipes, its return value the exit status, as `python -m module path` gives them."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    # The child flushes its streams on the way out, its own or, if it failed before it
    # had them, these: nothing buffered here may be in them.
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    try:
        pid = os.fork()
    except OSError:
        for fd in (out_r, out_w, err_r, err_w):
            os.close(fd)
        raise
    if pid == 0:  # the child: never returns
        _run_check(module, path, out_w, err_w)
    os.close(out_w)
    os.close(err_w)
    return ForkedCheck(pid, out_r, err_r)


def _run_check(module: str, path: Path, out: int, err: int) -> None:
    code = 1
    try:
        # Short-lived: the schema's few cycles are freed by the exit, not searched for.
        gc.disable()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        # Open until os._exit, which writes nothing itself: flushed below.
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", errors="backslashreplace", closefd=False)  # noqa: SIM115
        code = _exit_code(importlib.import_module(module).main([str(path)]))
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _exit_code(code: object) -> int:
    """The status `raise SystemExit(code)` ends Python with (a message's is 1)."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def finish_check(child: Check, timeout: float) -> tuple[int, bytes, str]:
    """The child's exit status, output and error output; it is killed on TimeoutExpired."""
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise
    return child.returncode, out, err.decode(errors="replace")


def error_answer(exc: AgentcageError) -> dict[str, Any]:
    """What a check answers for a config `load_config` refused: enough to raise it again."""
    return {
        "class": type(exc).__name__,
        "message": exc.message,
        "hint": exc.hint,
        "exit_code": exc.exit_code,
    }


def raised_error(found: dict[str, Any], other: type[AgentcageError]) -> AgentcageError:
    """The error `error_answer` described; `other` for an answer that describes none."""
    message, hint = found.get("message"), found.get("hint")
    if not isinstance(message, str) or not (hint is None or isinstance(hint, str)):
        return other("the config check answered an error without a message")
    kind = getattr(errors, str(found.get("class")), None)
    if not (isinstance(kind, type) and issubclass(kind, AgentcageError)):
        # InvalidConfig (config/load.py) is a ConfigError: same words, same exit code.
        kind = ConfigError if found.get("exit_code") == ConfigError.exit_code else other
    return kind(message, hint=hint)

"""One `podman exec` for every command a cage command runs in the host container.

Where cages run in a host container (`agentcage host start`, or AGENTCAGE_SYSTEMD_EXEC),
each podman/systemctl call used to be its own `podman exec -i NAME ...`: a Podman process
on this machine, an exec session and a conmon in the container, about 0.3 s of CPU each,
a dozen or more per `cage create`. `SessionRunner` starts one `podman exec -i NAME sh -c
LOOP` on first use and sends it each command; the loop runs it with `sh` and answers with
its exit code, stdout and stderr. Per command that costs a few short processes inside the
container instead.

The wire is line-based and shell-safe: a request is `<command> <stdin|-> <timeout>`, the
command (a `shlex.join` of the argv) and stdin in base64; an answer is `<code> <stdout>
<stderr>`, both in base64. Anything the session cannot do (it did not start because the
container is gone, it died, it timed out) falls back to, or is followed by, the one-shot
`SubprocessRunner` with the same prefix, so errors read exactly as before (`podman exec`'s
own "no container with name ..." is what `podman.unreachable` recognises).
"""

from __future__ import annotations

import base64
import contextlib
import os
import selectors
import shlex
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agentcage.cage.podman import DEFAULT_TIMEOUT, Completed, SubprocessRunner, failure
from agentcage.errors import PodmanError

# Runs in the container (POSIX sh and coreutils: the host image has both). `timeout`
# bounds each command there too: this end only stops waiting. Stdin is a pipe, as with
# a `podman exec` per call: `podman secret create NAME -` refuses anything else.
LOOP = r"""
d=$(mktemp -d) || exit 1
trap 'rm -rf "$d"' EXIT
while read -r cmd inp limit; do
  printf %s "$cmd" | base64 -d > "$d/c"
  [ "$inp" = - ] && inp=""
  printf %s "$inp" | base64 -d | timeout -v -k 5 "$limit" sh "$d/c" > "$d/o" 2> "$d/e"
  rc=$?
  printf '%s ' "$rc"; base64 -w0 < "$d/o"; printf ' '; base64 -w0 < "$d/e"; echo
done
"""


# What `timeout -v` writes to the command's stderr when it stops the command.
_TIMED_OUT = "timeout: sending signal"


class SessionLost(Exception):
    """The session ended or stopped answering."""

    def __init__(self, why: str, sent: bool) -> None:
        super().__init__(why)
        self.sent = sent  # the command went out, so it may have run


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _text(b64: bytes) -> str:
    return base64.b64decode(b64).decode(errors="replace")


class _Session:
    """One running `PREFIX sh -c LOOP`; one command at a time."""

    def __init__(self, prefix: tuple[str, ...]) -> None:
        self.proc = subprocess.Popen(
            [*prefix, "sh", "-c", LOOP],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.buffer = b""
        self.used = False  # answered at least once: the container was reachable

    def ask(self, argv: Sequence[str], stdin: str | None, timeout: float) -> Completed:
        assert self.proc.stdin is not None
        request = f"{_b64(shlex.join(argv))} {'-' if stdin is None else _b64(stdin)} {timeout:g}\n"
        try:
            self.proc.stdin.write(request.encode())
            self.proc.stdin.flush()
        except OSError as exc:
            raise SessionLost(str(exc), sent=False) from exc
        code, out, err = self._line(time.monotonic() + timeout + 10).split(b" ")
        self.used = True
        return Completed(tuple(argv), int(code), _text(out), _text(err))

    def _line(self, deadline: float) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self.buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise SessionLost("no answer in time", sent=True)
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise SessionLost("the session ended", sent=True)
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def end(self) -> None:
        """End of input ends the loop; nobody waits for it (the command is exiting)."""
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()

    def kill(self) -> None:
        """For a session that stopped answering (the loop's `timeout` ends its command)."""
        self.end()
        self.proc.kill()
        self.proc.wait()


@dataclass
class SessionRunner:
    """A `Runner` for a prefixed host that keeps one exec session for all its commands."""

    prefix: tuple[str, ...]
    fallback: SubprocessRunner = field(init=False)
    _session: _Session | None = field(init=False, default=None)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.fallback = SubprocessRunner(prefix=self.prefix)
        weakref.finalize(self, SessionRunner._close_session, self.__dict__)

    @staticmethod
    def _close_session(state: dict[str, object]) -> None:
        session = state.get("_session")
        if isinstance(session, _Session):
            session.end()

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Completed:
        result = self._ask(argv, input, timeout)
        if result is None:  # no session: run it the old way, with the old errors
            return self.fallback.run(argv, input=input, check=check, timeout=timeout)
        if check and not result.ok:
            raise failure(result)
        return result

    def _ask(self, argv: Sequence[str], stdin: str | None, timeout: float) -> Completed | None:
        """The session's answer; None when no session could take the command."""
        with self._lock:
            for _ in range(2):  # a session that ended while idle is replaced once
                if self._session is None:
                    self._session = _Session(self.prefix)
                session = self._session
                try:
                    result = session.ask(argv, stdin, timeout)
                    break
                except SessionLost as exc:
                    self._session = None
                    session.kill()
                    if exc.sent and session.used:
                        # Not repeated: it may have run, or may still be running.
                        raise PodmanError(
                            f"`{shlex.join((*self.prefix, *argv))}` got no answer: {exc}"
                        ) from exc
                    if not session.used:
                        return None  # it never started: the one-shot run says why
            else:
                return None
        full = (*self.prefix, *argv)
        if result.returncode == 124 and _TIMED_OUT in result.stderr:
            # `timeout` in the loop stopped it (and said so), as SubprocessRunner would have.
            raise PodmanError(f"`{shlex.join(full)}` did not finish within {timeout:g}s")
        return Completed(full, result.returncode, result.stdout, result.stderr)

    def stream(self, argv: Sequence[str], on_line: Callable[[str], None]) -> None:
        self.fallback.stream(argv, on_line)

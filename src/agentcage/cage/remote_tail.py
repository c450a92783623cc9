"""Following a remote cage's audit logs as they are written there (`audit --follow`).

One `tail -F` per log on the target, each in its own session of the shared master
connection, starting at the byte where the local copy's last whole line ends: what
`audit` read from the copy is not sent again, and nothing written after the copy is
skipped. `tail -F` follows the name, so a rotation there is followed as it is locally.

The remote command reads its stdin until EOF and then stops tail: closing our end (or
this process dying) ends the remote tail too, instead of leaving it until its next
write fails.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from agentcage.audit.reading import Line, parse
from agentcage.cage.ssh_target import SshRunner, connection_hint
from agentcage.errors import UnreachableError

# $1 the file there, $2 the 1-based byte to start at. A file shorter than what was read of
# it is a newer one (rotated since the copy): it is read from its start. tail's notes on
# rotations and on a file that is not there yet are dropped: they would be printed among
# the records.
_TAIL = (
    'n=$2; s=$(stat -c %s -- "$1" 2>/dev/null) || s=0; [ "$s" -ge $((n - 1)) ] || n=1; '
    'tail -F -c "+$n" -- "$1" 2>/dev/null & t=$!; cat >/dev/null; kill "$t" 2>/dev/null'
)
STOP_SECONDS = 5.0


def tail_argv(runner: SshRunner, path: Path, offset: int) -> tuple[str, ...]:
    """The local argv that prints file `path` there from byte `offset` (0-based) on, and
    then every byte appended to it, until its stdin closes."""
    return runner.remote(["sh", "-c", _TAIL, "sh", str(path), str(offset + 1)])


class _TailSession:
    """One `tail -F` there: its output split into audit lines."""

    def __init__(self, runner: SshRunner, path: Path, offset: int) -> None:
        self.path = path
        # Its own session: Ctrl-C in the terminal reaches this process (which then closes
        # the stream) and not ssh, which would otherwise die first and look like a drop.
        self.process = subprocess.Popen(
            tail_argv(runner, path, offset),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        self.fd = self.process.stdout.fileno()
        os.set_blocking(self.fd, False)
        os.set_blocking(self.process.stderr.fileno(), False)
        self.partial = b""
        self.ended = False

    def read(self) -> list[Line]:
        """The whole lines that arrived since the last read."""
        lines = []
        while not self.ended:
            try:
                chunk = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                self.ended = True
                break
            *whole, self.partial = (self.partial + chunk).split(b"\n")
            lines += [line for raw in whole if (line := parse(raw)) is not None]
        return lines

    def stderr(self) -> str:
        """What ssh said (read without waiting: only once the stream has ended)."""
        assert self.process.stderr is not None
        try:
            said = os.read(self.process.stderr.fileno(), 1 << 16)
        except (BlockingIOError, ValueError):
            said = b""
        return said.decode(errors="replace").strip()

    def stop(self) -> None:
        try:
            self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()  # the remote `cat` ends, and with it tail
        self.stop()
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


class RemoteTail:
    """The audit logs `paths` there followed from `offsets` (bytes already read of each):
    `poll()` gives what was appended since, as `AuditLogs.poll` does for local files."""

    def __init__(self, runner: SshRunner, paths: Sequence[Path], offsets: Sequence[int]) -> None:
        self.runner = runner
        self._lost: UnreachableError | None = None
        self._streams: list[_TailSession] = []
        try:
            for path, offset in zip(paths, offsets, strict=True):
                self._streams.append(_TailSession(runner, path, offset))
        except BaseException:
            self.close()
            raise

    def poll(self) -> list[Line]:
        """The lines that arrived, in time order; `UnreachableError` once a stream has ended
        (tail itself never ends: the connection or the target went away)."""
        if self._lost is not None:
            raise self._lost
        lines = [line for stream in self._streams for line in stream.read()]
        ended = [stream for stream in self._streams if stream.ended]
        if ended:  # raised at the next poll: the lines that came before it are shown first
            self._lost = self._lost_error(ended[0])
        return sorted(lines, key=lambda line: line.time)

    def _lost_error(self, stream: _TailSession) -> UnreachableError:
        stream.stop()
        said = stream.stderr()
        target = self.runner.target
        return UnreachableError(
            f"lost host target {target.name} ({target.address}) while following "
            f"{stream.path} there: {said[-500:] or f'exit {stream.process.returncode}'}",
            hint=connection_hint(target, said) + "; `agentcage audit NAME` shows what was written",
        )

    def close(self) -> None:
        for stream in self._streams:
            stream.close()

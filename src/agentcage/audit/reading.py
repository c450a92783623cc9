"""Reading audit logs back: every generation oldest first, merged by time, or followed live.

A log is the live file and its rotations (`logfiles.py`). `read_logs` yields what
is there now; `LogFollower` then yields each line as it is appended, across
rotations, the way `tail -F` follows a name rather than a file.
"""

from __future__ import annotations

import heapq
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from agentcage.audit.logfiles import generations
from agentcage.errors import ConfigError, StateError

Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Line:
    """One audit line: the text as written (for `--json`) and its parsed record."""

    text: str
    record: Record

    @property
    def time(self) -> str:
        return str(self.record.get("time", ""))


def parse(raw: bytes) -> Line | None:
    """The line, or None for something that is not an audit record (a torn last line)."""
    text = raw.decode("utf-8", "replace").rstrip("\n")
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return Line(text, record) if isinstance(record, dict) else None


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except PermissionError as exc:
        raise StateError(
            f"cannot read the audit log {path}: permission denied",
            hint="a rootless cage's logs belong to its containers' user: "
            "run the command under `podman unshare`",
        ) from exc


def named_logs(paths: Iterable[Path]) -> list[Path]:
    """`paths` given on a command line; `ConfigError` for one with no file at all."""
    paths = list(paths)
    for path in paths:
        if not generations(path):
            raise ConfigError(
                f"{path}: no such audit log (nor rotated files {path.name}.1, ...)",
                hint="pass the file given to `--audit-log`",
            )
    return paths


class _Log:
    """One log: the live file open at what has been read of it, followed across rotations."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: BinaryIO | None = None
        self.partial = b""

    def existing(self) -> Iterator[Line]:
        """What the log holds now, oldest file first, leaving the live file open at its end.

        The live file is opened first: if it is rotated meanwhile, the files older than
        it are still found by name and it is read to its end, and `poll` sees the move.
        """
        ours = self._open_live()
        files = generations(self.path)
        inodes = _inodes(files)
        if ours in inodes:
            older = files[: inodes.index(ours)]
        else:  # no live file yet (or it vanished): every file there is a rotated one
            older = [path for path in files if path != self.path]
        for path in older:
            yield from _whole_file(path)
        yield from self._drain()

    def _open_live(self) -> int | None:
        try:
            self.handle = _open(self.path)
        except FileNotFoundError:
            return None
        return os.fstat(self.handle.fileno()).st_ino

    def poll(self) -> list[Line]:
        lines = list(self._drain())
        while self._moved():
            lines += self._drain()  # what was written before the rename
            lines += self._catch_up()
        return lines

    def _drain(self) -> Iterator[Line]:
        if self.handle is None:
            return
        while chunk := self.handle.read(1 << 20):
            *whole, self.partial = (self.partial + chunk).split(b"\n")
            for raw in whole:
                line = parse(raw)
                if line is not None:
                    yield line

    def _moved(self) -> bool:
        """Whether the name now holds another file than ours (rotated, or newly created)."""
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            return False  # between the rename and the new file: keep reading ours
        return self.handle is None or os.fstat(self.handle.fileno()).st_ino != current

    def _catch_up(self) -> list[Line]:
        """Read the files newer than ours whole, then follow the live one.

        Several rotations may have happened since the last poll; files older than ours
        are removed before ours, so if ours is gone every file left is newer.
        """
        ours = os.fstat(self.handle.fileno()).st_ino if self.handle is not None else None
        self.close()
        files = generations(self.path)
        inodes = _inodes(files)
        newer = files[inodes.index(ours) + 1 :] if ours in inodes else files
        lines = [line for path in newer if path != self.path for line in _whole_file(path)]
        if self.path in newer:
            self._open_live()
            lines += self._drain()
        return lines

    def position(self) -> int:
        """The live file's bytes read as whole lines (0 before it existed)."""
        return self.handle.tell() - len(self.partial) if self.handle is not None else 0

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
        self.handle, self.partial = None, b""


def _inodes(files: list[Path]) -> list[int]:
    inodes = []
    for path in files:
        try:
            inodes.append(os.stat(path).st_ino)
        except FileNotFoundError:
            inodes.append(-1)
    return inodes


def _whole_file(path: Path) -> Iterator[Line]:
    """The whole lines of a file that is no longer written (a rotated one)."""
    try:
        handle = _open(path)
    except FileNotFoundError:  # removed meanwhile (past the keep count)
        return
    with handle:
        for raw in handle:
            if raw.endswith(b"\n"):
                line = parse(raw)
                if line is not None:
                    yield line


class AuditLogs:
    """Several logs (the proxy's and the DNS sidecar's) read as one stream, newest last.

    `existing()` yields what they hold now, merged by time; each log is in time order
    already (one writer appends it) and records carry fixed-width UTC timestamps, so
    their text sorts as their time does. `poll()` then returns what was appended since.
    """

    def __init__(self, paths: Iterable[Path]) -> None:
        self._logs = [_Log(path) for path in paths]

    def existing(self) -> Iterator[Line]:
        return heapq.merge(*(log.existing() for log in self._logs), key=lambda line: line.time)

    def poll(self) -> list[Line]:
        """The lines appended since the last poll (or since `existing`), in time order."""
        lines = [line for log in self._logs for line in log.poll()]
        return sorted(lines, key=lambda line: line.time)

    def hand_off(self, paths: Iterable[Path]) -> list[int]:
        """Stop following the logs `paths` (another reader goes on from here): for each,
        the bytes of its live file that `existing` and `poll` have returned."""
        wanted = list(paths)
        by_path = {log.path: log for log in self._logs}
        offsets = [by_path[path].position() for path in wanted]
        for path in wanted:
            by_path[path].close()
        self._logs = [log for log in self._logs if log.path not in wanted]
        return offsets

    def close(self) -> None:
        for log in self._logs:
            log.close()

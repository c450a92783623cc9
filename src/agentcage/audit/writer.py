"""Appending audit lines so that none is lost or torn: the writer the proxy and DNS share.

A file is written with one `os.write` per line on an `O_APPEND` descriptor, under a
lock, retrying short writes: each line reaches the kernel before the caller acts on
the decision it records (nothing waits in a buffer to be lost if the process is
killed), appends whole even next to another writer, and costs one system call.
A write that fails raises `OSError`; the caller decides what failing closed means.

With a `Rotation`, the writer starts a new file when the next line would take the
live one past its size, under the same lock: the threads of the process that owns
the log wait for the rename and write into the new file, so every line lands whole
in exactly one file (`logfiles.py` names them). One process owns each log (the proxy
its own, the DNS sidecar its own); a second process appending to the same path would
keep writing into the file the first one rotated away.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import threading
from pathlib import Path

from agentcage.audit.logfiles import Rotation, rotate
from agentcage.audit.record import AuditRecord
from agentcage.errors import AgentcageError

logger = logging.getLogger(__name__)


class AuditWriter:
    """Appends `AuditRecord` lines to `path` (stdout without one); `reopen` follows rotation.

    A log that cannot be opened raises `error` (the caller's kind of failure: a bad
    argument for the proxy, a DNS failure for the sidecar) naming the log `title`,
    with `hint`.
    """

    def __init__(
        self,
        path: Path | None,
        *,
        title: str = "audit log",
        error: type[AgentcageError] = AgentcageError,
        hint: str = "check that its directory exists and is writable",
        rotation: Rotation | None = None,
    ) -> None:
        self.path = path
        self.rotation = rotation or Rotation()
        self._title, self._error, self._hint = title, error, hint
        self._lock = threading.Lock()
        self._size = 0  # of the live file: its size when opened plus what we appended
        self._rotating = True  # False after a failed rotation, until `reopen`
        self._fd = self._open()
        self._closed = False

    def _open(self) -> int | None:
        if self.path is None:
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            fd = os.open(self.path, flags, 0o666)  # as `open()` would: umask decides
            self._size = os.fstat(fd).st_size
            return fd
        except OSError as exc:
            raise self._error(
                f"cannot open the {self._title} {self.path}: {exc.strerror}", hint=self._hint
            ) from exc

    def write(self, record: AuditRecord) -> None:
        """Append one line; `OSError` if it did not reach the file whole."""
        line = record.to_json() + "\n"
        with self._lock:
            if self._closed:
                raise ValueError("the audit log is closed")
            if self._fd is None:
                sys.stdout.write(line)
                sys.stdout.flush()
                return
            data = line.encode("utf-8")
            if self._rotating and self.rotation.due(self._size, len(data)):
                self._rotate()
            self._size += len(data)
            while data:  # a short write (full disk, signal) must not drop the rest
                written = os.write(self._fd, data)
                if written == 0:
                    raise OSError(errno.ENOSPC, "no space left for the audit line")
                data = data[written:]

    def _rotate(self) -> None:
        """Move the live file away and open a new one (called under the lock)."""
        assert self.path is not None
        try:
            rotate(self.path, self.rotation.keep)
            fd = self._open()
        except (OSError, AgentcageError) as exc:
            # Writing the line matters more than bounding the file: keep the descriptor
            # we have (wherever its file now is) and stop rotating, so that no later
            # rotation removes the file it still appends to.
            self._rotating = False
            logger.error(
                "cannot rotate the %s %s (%s); it grows until the log is reopened (SIGHUP)",
                self._title,
                self.path,
                exc,
            )
            return
        old, self._fd = self._fd, fd
        if old is not None:
            os.close(old)

    def reopen(self) -> None:
        if self.path is None:
            return
        with self._lock:
            old, self._fd = self._fd, self._open()
            self._rotating = True
            if old is not None:
                os.close(old)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

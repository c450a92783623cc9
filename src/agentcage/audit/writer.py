"""Appending audit lines so that none is lost or torn: the writer the proxy and DNS share.

A file is written with one `os.write` per line on an `O_APPEND` descriptor, under a
lock, retrying short writes: each line reaches the kernel before the caller acts on
the decision it records (nothing waits in a buffer to be lost if the process is
killed), appends whole even next to another writer, and costs one system call.
A write that fails raises `OSError`; the caller decides what failing closed means.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
from pathlib import Path

from agentcage.audit.record import AuditRecord
from agentcage.errors import AgentcageError


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
    ) -> None:
        self.path = path
        self._title, self._error, self._hint = title, error, hint
        self._lock = threading.Lock()
        self._fd = self._open()
        self._closed = False

    def _open(self) -> int | None:
        if self.path is None:
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            return os.open(self.path, flags, 0o666)  # as `open()` would: umask decides
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
            while data:  # a short write (full disk, signal) must not drop the rest
                written = os.write(self._fd, data)
                if written == 0:
                    raise OSError(errno.ENOSPC, "no space left for the audit line")
                data = data[written:]

    def reopen(self) -> None:
        if self.path is None:
            return
        with self._lock:
            old, self._fd = self._fd, self._open()
            if old is not None:
                os.close(old)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

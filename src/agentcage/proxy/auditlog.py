"""The audit sink: one JSON line per decision, to a file or stdout.

A file is written with one `os.write` per line on an `O_APPEND` descriptor: each
line reaches the kernel before the decision takes effect (nothing waits in a
buffer to be lost), appends whole even next to another writer, and costs one
system call.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from agentcage.errors import ConfigError
from agentcage.policy.audit import AuditRecord


class AuditLog:
    """Appends `AuditRecord` lines; `reopen` follows log rotation (done on SIGHUP)."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._fd = self._open()
        self._closed = False

    def _open(self) -> int | None:
        if self._path is None:
            return None
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            return os.open(self._path, flags, 0o666)  # as `open()` would: umask decides
        except OSError as exc:
            raise ConfigError(
                f"cannot open the audit log {self._path}: {exc.strerror}",
                hint="pass a writable --audit-log path, or omit it to write to stdout",
            ) from exc

    def write(self, record: AuditRecord) -> None:
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
                data = data[os.write(self._fd, data) :]

    def reopen(self) -> None:
        if self._path is None:
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

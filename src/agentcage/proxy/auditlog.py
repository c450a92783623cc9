"""The audit sink: one JSON line per decision, to a file or stdout."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import TextIO

from agentcage.errors import ConfigError
from agentcage.policy.audit import AuditRecord


class AuditLog:
    """Appends `AuditRecord` lines; `reopen` follows log rotation (done on SIGHUP)."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stream: TextIO = self._open()

    def _open(self) -> TextIO:
        if self._path is None:
            return sys.stdout
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            return self._path.open("a", encoding="utf-8", buffering=1)
        except OSError as exc:
            raise ConfigError(
                f"cannot open the audit log {self._path}: {exc.strerror}",
                hint="pass a writable --audit-log path, or omit it to write to stdout",
            ) from exc

    def write(self, record: AuditRecord) -> None:
        line = record.to_json() + "\n"
        with self._lock:
            self._stream.write(line)
            self._stream.flush()

    def reopen(self) -> None:
        if self._path is None:
            return
        with self._lock:
            old, self._stream = self._stream, self._open()
            old.close()

    def close(self) -> None:
        if self._path is not None:
            with self._lock:
                self._stream.close()

"""The proxy's audit sink: the shared line writer (`agentcage.auditfile`), its errors
phrased for `agentcage proxy run`, and a short notice on stderr for each kind of block.

The notice is what `agentcage cage logs NAME -s proxy` shows: a package manager that
fails with 403 or 429 prints only the status, so the proxy's log says which request,
which inspector and the reason, whose words name the setting to change.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agentcage.auditfile import AuditFile
from agentcage.errors import ConfigError
from agentcage.policy.audit import AuditRecord

logger = logging.getLogger(__name__)
# A storm of refusals (a retrying installer) prints one line per kind (host, inspector,
# rules) per window; the next line of that kind says how many were left out.
QUIET_SECONDS = 10.0
MAX_KINDS = 1000
MAX_PATH = 120


class AuditLog(AuditFile):
    """Appends `AuditRecord` lines; `reopen` follows log rotation (done on SIGHUP)."""

    def __init__(self, path: Path | None, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(path)
        self._notices = BlockNotices(clock)

    def open_error(self, exc: OSError) -> ConfigError:
        return ConfigError(
            f"cannot open the audit log {self.path}: {exc.strerror}",
            hint="pass a writable --audit-log path, or omit it to write to stdout",
        )

    def write(self, record: AuditRecord) -> None:
        super().write(record)
        if record.verdict == "block":
            self._notices.tell(record)


class BlockNotices:
    """Logs a block as a warning, unless one of its kind was logged in the last window."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str, tuple[str, ...]], float] = {}
        self._held: dict[tuple[str, str, tuple[str, ...]], int] = {}

    def tell(self, record: AuditRecord) -> None:
        kind = (record.host, record.inspector, record.rules)
        now = self._clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < QUIET_SECONDS:
                self._held[kind] = self._held.get(kind, 0) + 1
                return
            if len(self._last) >= MAX_KINDS:
                self._last.clear()
            self._last[kind] = now
            held = self._held.pop(kind, 0)
        target = record.host + (record.path[:MAX_PATH] if record.path else "")
        what = f"{record.method} {target}" if record.method else f"{record.kind} to {target}"
        more = f" (and {held} more like it since the last such line)" if held else ""
        logger.warning(
            "blocked %s (%s): %s%s", what, record.inspector or "proxy", record.reason, more
        )

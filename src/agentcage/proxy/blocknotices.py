"""A short notice on stderr for each kind of block, beside its audit line.

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

from agentcage.audit.record import AuditRecord
from agentcage.audit.writer import AuditWriter
from agentcage.errors import AgentcageError

logger = logging.getLogger(__name__)
# A storm of refusals (a retrying installer) prints one line per kind (host, inspector,
# rules) per window; the next line of that kind says how many were left out.
QUIET_SECONDS = 10.0
MAX_KINDS = 1000
MAX_PATH = 120

Kind = tuple[str, str, tuple[str, ...]]


class BlockNotices:
    """Logs a block as a warning, unless one of its kind was logged in the last window."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[Kind, float] = {}
        self._held: dict[Kind, int] = {}

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
        target = record.host + record.path[:MAX_PATH]
        what = f"{record.method} {target}" if record.method else f"{record.kind} to {target}"
        more = f" (and {held} more like it since the last such line)" if held else ""
        logger.warning(
            "blocked %s (%s): %s%s", what, record.inspector or "proxy", record.reason, more
        )


class NoticingAuditWriter(AuditWriter):
    """The proxy's audit writer: a block's line is written, then told as a notice."""

    def __init__(
        self,
        path: Path | None,
        *,
        error: type[AgentcageError],
        hint: str,
        notices: BlockNotices | None = None,
    ) -> None:
        super().__init__(path, error=error, hint=hint)
        self._notices = notices or BlockNotices()

    def write(self, record: AuditRecord) -> None:
        super().write(record)
        if record.verdict == "block":
            self._notices.tell(record)

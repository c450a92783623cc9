"""A short notice on stderr for each kind of block, beside its audit line.

The notice is what `agentcage cage logs NAME -s proxy` shows: a package manager that
fails with 403 or 429 prints only the status, so the proxy's log says which request,
which inspector and the reason, whose words name the setting to change. An audit
line that cannot be written raises an alert there too (`AuditAlarm`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agentcage.audit.logfiles import Rotation
from agentcage.audit.record import AuditRecord
from agentcage.audit.writer import AuditWriter
from agentcage.errors import AgentcageError
from agentcage.proxy.proxy_metrics import ProxyMetrics

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


class AuditAlarm:
    """An alert on stderr when the audit log cannot be written, and when it can again.

    The first failure is told at once; during a storm, one line per window says how
    many more failed. Every one of those requests was refused (fail closed).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._failing = False
        self._last = 0.0
        self._held = 0
        self._total = 0

    def failed(self, path: Path | None, exc: OSError) -> None:
        now = self._clock()
        with self._lock:
            self._total += 1
            if self._failing and now - self._last < QUIET_SECONDS:
                self._held += 1
                return
            self._failing, self._last = True, now
            held, self._held = self._held, 0
        more = f" ({held} more failed writes since the last such line)" if held else ""
        logger.error(
            "ALERT: cannot write the audit log %s: %s; requests are refused until it can "
            "be written%s",
            path or "(stdout)",
            exc.strerror or exc,
            more,
        )

    def succeeded(self) -> None:
        if not self._failing:  # the common case: one read, no lock
            return
        with self._lock:
            if not self._failing:
                return
            self._failing, total, self._total, self._held = False, self._total, 0, 0
        logger.warning("the audit log is written again, after %d failed writes", total)


class NoticingAuditWriter(AuditWriter):
    """The proxy's audit writer: a block's line is written, then told as a notice; a
    failed write raises an alarm before the caller refuses the request."""

    def __init__(
        self,
        path: Path | None,
        *,
        error: type[AgentcageError],
        hint: str,
        notices: BlockNotices | None = None,
        rotation: Rotation | None = None,
        alarm: AuditAlarm | None = None,
        metrics: ProxyMetrics | None = None,
    ) -> None:
        super().__init__(path, error=error, hint=hint, rotation=rotation)
        self._notices = notices or BlockNotices()
        self.alarm = alarm or AuditAlarm()
        self._metrics = metrics

    def write(self, record: AuditRecord) -> None:
        try:
            super().write(record)
        except OSError as exc:
            self.alarm.failed(self.path, exc)
            if self._metrics is not None:
                self._metrics.audit_errors.inc()
            raise
        self.alarm.succeeded()
        if self._metrics is not None:
            self._metrics.record(record)
        if record.verdict == "block":
            self._notices.tell(record)

"""The DNS sidecar's audit log: the shared line writer, the lines `logging.dns_queries` asks for.

`emit` returns only once the line is in the kernel (see `agentcage.audit.writer`), and the
sidecar calls it before a query leaves, so a query that reached an upstream always
has its line, even if the sidecar is killed the next instant.
"""

from __future__ import annotations

from pathlib import Path

from agentcage.audit.logfiles import Rotation
from agentcage.audit.record import AuditRecord
from agentcage.audit.writer import AuditWriter
from agentcage.dns.judge import FINDINGS
from agentcage.dns.plan import DnsView
from agentcage.errors import DnsError


class DnsAuditLog(AuditWriter):
    """Tunnel, value, budget and answer findings and learn mode's would-block lines
    always; other lines as `which` says (`all`, `blocked`: block and flag lines, `none`)."""

    which = "blocked"

    def __init__(self, path: Path | None) -> None:
        super().__init__(path, title="DNS audit log", error=DnsError)

    def configure(self, config: DnsView) -> None:
        """Which lines to write, and when to rotate, as `logging` says."""
        self.which = config.logging.dns_queries
        self.rotation = Rotation(config.logging.audit_max_bytes, config.logging.audit_keep)

    def wants(self, record: AuditRecord) -> bool:
        if record.inspector in FINDINGS or record.learn:
            return True
        return self.which == "all" or (self.which == "blocked" and record.verdict != "allow")

    def emit(self, record: AuditRecord) -> None:
        """Write `record` if wanted; `DnsError` if it could not be written."""
        if not self.wants(record):
            return
        try:
            self.write(record)
        except (OSError, ValueError) as exc:
            raise DnsError(f"cannot write the DNS audit log: {exc}") from exc

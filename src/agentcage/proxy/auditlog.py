"""The proxy's audit sink: the shared line writer (`agentcage.audit.writer`), its errors
phrased for `agentcage proxy run`."""

from __future__ import annotations

from agentcage.audit.writer import AuditFile
from agentcage.errors import ConfigError


class AuditLog(AuditFile):
    """Appends `AuditRecord` lines; `reopen` follows log rotation (done on SIGHUP)."""

    def open_error(self, exc: OSError) -> ConfigError:
        return ConfigError(
            f"cannot open the audit log {self.path}: {exc.strerror}",
            hint="pass a writable --audit-log path, or omit it to write to stdout",
        )

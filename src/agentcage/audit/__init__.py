"""The audit log: one JSON line per decision, written so that none is lost or torn.

`record.AuditRecord` is the line (its schema: docs/audit-log.md); `writer.AuditWriter`
appends lines to a file or stdout. The proxy and the DNS sidecar both write through
them; each says which lines it writes and what a failed write means for it.
"""

"""The DNS audit log: which lines `logging.dns_queries` keeps, and failing loudly."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcage.audit.record import AuditRecord
from agentcage.dns.dnsaudit import DnsAuditLog
from agentcage.errors import DnsError


def _record(verdict: str, inspector: str = "dns-domains") -> AuditRecord:
    return AuditRecord(kind="dns", verdict=verdict, inspector=inspector, qname="a.example")


@pytest.mark.parametrize(
    ("which", "kept"),
    [
        ("all", ["allow", "block", "flag", "tunnel", "values", "budget"]),
        ("blocked", ["block", "flag", "tunnel", "values", "budget"]),
        ("none", ["tunnel", "values", "budget"]),
    ],
)
def test_findings_are_always_written(tmp_path: Path, which: str, kept: list[str]) -> None:
    log = DnsAuditLog(tmp_path / "dns.jsonl")
    log.which = which
    records = {
        "allow": _record("allow"),
        "block": _record("block"),
        "flag": _record("flag", "dns-other"),
        "tunnel": _record("allow", "dns-tunnel"),
        "values": _record("block", "dns-values"),
        "budget": _record("block", "dns-budget"),
    }
    assert [name for name, record in records.items() if log.wants(record)] == kept


def test_write_and_open_failures_are_dns_errors(tmp_path: Path) -> None:
    full = DnsAuditLog(Path("/dev/full"))
    full.which = "all"
    with pytest.raises(DnsError, match="cannot write the DNS audit log"):
        full.emit(_record("allow"))
    full.close()
    (tmp_path / "file").write_text("")
    with pytest.raises(DnsError, match="cannot open the DNS audit log"):
        DnsAuditLog(tmp_path / "file" / "dns.jsonl")

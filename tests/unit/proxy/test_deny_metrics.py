"""The deny listener's lines count every refused flow, those its summary stands for too."""

from __future__ import annotations

from agentcage.audit.record import AuditRecord
from agentcage.proxy.proxy_metrics import ProxyMetrics


def test_a_summary_line_counts_the_flows_it_left_out() -> None:
    metrics = ProxyMetrics()
    metrics.record(AuditRecord(kind="flow", verdict="block", host="203.0.113.7", port=22))
    metrics.record(AuditRecord(kind="flow", verdict="block", extra={"suppressed": 986}))
    assert metrics.refused_streams._value.get() == 987

"""The DNS sidecar's Prometheus metrics (`dns run --metrics`), counted from its verdicts.

Every judged query is counted, whatever `logging.dns_queries` writes to the audit
log. Labels are bounded: the answer is one of four, verdicts three, inspectors the
judge's six.
"""

from __future__ import annotations

from prometheus_client.metrics import Counter, Gauge

from agentcage.dns.judge import QueryDecision
from agentcage.metrics.sidecar_registry import SidecarRegistry


class DnsMetrics(SidecarRegistry):
    def __init__(self) -> None:
        super().__init__("dns", "Queries judged")
        r = self.registry
        self.queries = Counter(
            "agentcage_dns_queries",
            "Queries judged, by how they were answered (forward, sinkhole, refused, "
            "servfail), verdict and deciding inspector.",
            ["answer", "verdict", "inspector"],
            registry=r,
        )
        self.tunnel_blocks = Counter(
            "agentcage_dns_tunnel_blocks",
            "Zones blocked after DNS tunnel detection (`dns.tunnel_action: block`).",
            registry=r,
        )
        self.blocked_zones = Gauge(
            "agentcage_dns_blocked_zones",
            "Zones blocked now (kept across restarts with --blocked-zones).",
            registry=r,
        )
        self.audit_errors = Counter(
            "agentcage_dns_audit_write_errors",
            "Audit lines that could not be written (the sidecar then stops: fail closed).",
            registry=r,
        )

    def query(self, decision: QueryDecision, counted: bool = True) -> None:
        """Count a judged query; the sidecar's own health probe (`counted=False`) stays
        out of the last hour's verdicts `cage status` shows."""
        self.queries.labels(decision.answer, decision.verdict.value, decision.inspector).inc()
        if counted:
            self.recent.add(decision.verdict.value)

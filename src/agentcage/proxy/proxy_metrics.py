"""The proxy's Prometheus metrics (`proxy run --metrics`), counted from its decisions.

Decisions are counted from their audit records (`ProxyMetrics.record`), so a metric
and the audit log agree on what was allowed, flagged and blocked; the gate counts
the allowed requests that `logging.allowed_requests: false` leaves out of the log
the same way. Bytes come from `TrafficCounter`, an addon that sees every exchange
whatever is logged. Label sets are bounded: inspectors are the chain's and the
proxy's own, secrets are the config's names (never values), and hosts are the
first `MAX_HOSTS` hosts the policy let through; every other host is `other`.
"""

from __future__ import annotations

from collections.abc import Iterable

from mitmproxy import http
from prometheus_client.metrics import Counter, Histogram

from agentcage.audit.record import AuditRecord
from agentcage.metrics.labels import BoundedLabel
from agentcage.metrics.sidecar_registry import SidecarRegistry
from agentcage.policy.types import Verdict
from agentcage.proxy.flow_state import flow_state
from agentcage.proxy.flows import BLOCKED_HEADER

MAX_HOSTS = 100
# Inspection takes tens of microseconds for a small request, milliseconds for MiBs.
INSPECTION_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip


class ProxyMetrics(SidecarRegistry):
    def __init__(self) -> None:
        super().__init__("proxy", "Request decisions")
        self._hosts = BoundedLabel(MAX_HOSTS)
        r = self.registry
        self.requests = Counter(
            "agentcage_proxy_requests",
            "Request decisions, by verdict, deciding inspector (none: a plain allow) and host.",
            ["verdict", "inspector", "host"],
            registry=r,
        )
        self.websocket = Counter(
            "agentcage_proxy_websocket_messages",
            "WebSocket message and control frame decisions, by verdict and inspector.",
            ["verdict", "inspector"],
            registry=r,
        )
        self.refused_responses = Counter(
            "agentcage_proxy_refused_responses",
            "Responses refused on the way back to the agent (allowed requests), by inspector.",
            ["inspector"],
            registry=r,
        )
        self.refused_streams = Counter(
            "agentcage_proxy_refused_streams",
            "Raw TCP/UDP streams refused (only inspected HTTP and WebSocket leave).",
            registry=r,
        )
        self.rate_limited = Counter(
            "agentcage_proxy_rate_limited",
            "Requests refused with 429, by the budget that was spent.",
            ["budget"],
            registry=r,
        )
        self.injected = Counter(
            "agentcage_proxy_injected_secrets",
            "Requests a secret's real value was injected into, by the secret's name.",
            ["secret"],
            registry=r,
        )
        self.inspection = Histogram(
            "agentcage_proxy_inspection_seconds",
            "Time the inspector chain took to decide a request.",
            buckets=INSPECTION_BUCKETS,
            registry=r,
        )
        self.bytes = Counter(
            "agentcage_proxy_bytes",
            "Body and WebSocket payload bytes relayed: to_upstream (from the agent) and "
            "to_agent (from upstream).",
            ["direction"],
            registry=r,
        )
        self.audit_errors = Counter(
            "agentcage_proxy_audit_write_errors",
            "Audit lines that could not be written (each refused its request).",
            registry=r,
        )

    def record(self, line: AuditRecord) -> None:
        """Count the decision `line` records."""
        inspector = line.inspector or "none"
        if line.kind == "http":
            allowed = line.verdict != "block"
            host = self._hosts.of(line.host, admit=allowed) if line.host else "none"
            self.requests.labels(line.verdict, inspector, host).inc()
            self.recent.add(line.verdict)
            if line.inspector == "rate-limit":
                for rule in line.rules:
                    self.rate_limited.labels(rule.removeprefix("rate-limit:")).inc()
        elif line.kind == "websocket":
            self.websocket.labels(line.verdict, inspector).inc()
        elif line.kind == "response" and line.verdict == "block":
            self.refused_responses.labels(inspector).inc()
        elif line.kind == "connection" and line.verdict == "block":
            self.refused_streams.inc()
        elif line.kind == "flow":  # the deny listener's; a summary line stands for its count
            self.refused_streams.inc(int(line.extra.get("suppressed", 1)))

    def secrets_injected(self, names: Iterable[str]) -> None:
        for name in names:
            self.injected.labels(name).inc()


class TrafficCounter:
    """Counts the bytes of every exchange and WebSocket message that was relayed."""

    def __init__(self, metrics: ProxyMetrics) -> None:
        self._sent = metrics.bytes.labels("to_upstream")
        self._received = metrics.bytes.labels("to_agent")

    def response(self, flow: http.HTTPFlow) -> None:
        state = flow_state(flow)
        note, response = state.gate, flow.response
        if note is None or note.decision.verdict is Verdict.BLOCK or response is None:
            return  # refused: nothing went upstream, and the answer is the proxy's
        if BLOCKED_HEADER in response.headers:
            return  # allowed by the policy, refused after (egress, audit): the same
        self._sent.inc(len(flow.request.raw_content or b""))
        streamed = state.streamed_bytes
        self._received.inc(len(response.raw_content or b"") if streamed is None else streamed)

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        assert flow.websocket is not None
        message = flow.websocket.messages[-1]
        if message.dropped:
            return
        (self._sent if message.from_client else self._received).inc(len(message.content))

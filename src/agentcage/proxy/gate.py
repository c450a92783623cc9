"""The request gate: host agreement, policy decision, egress check, secret injection."""

from __future__ import annotations

import logging
import time

from mitmproxy import http

from agentcage.audit.writer import AuditWriter
from agentcage.policy.types import Verdict
from agentcage.proxy import hygiene
from agentcage.proxy.egress import ResolveError
from agentcage.proxy.flow_state import GateNote, flow_state
from agentcage.proxy.flows import apply_request, block_response, folded, policy_request, record
from agentcage.proxy.host_agreement import HostMismatch, Target, agree
from agentcage.proxy.proxy_metrics import ProxyMetrics
from agentcage.proxy.runtime import RuntimeHolder

logger = logging.getLogger(__name__)
# Real clients send a few KiB; servers commonly refuse past 8-64 KiB. Anything
# larger is refused here rather than forwarded as a hiding place for data.
MAX_HEADER_BYTES = 64 * 1024
_UPGRADE = frozenset({b"upgrade"})


class Blocked(Exception):
    def __init__(self, status: int, inspector: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.inspector, self.reason = status, inspector, reason


class RequestGate:
    """Decides every request before anything leaves the proxy; any error blocks it."""

    def __init__(
        self, holder: RuntimeHolder, audit: AuditWriter, metrics: ProxyMetrics | None = None
    ) -> None:
        self._holder = holder
        self._audit = audit
        self._metrics = metrics

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        try:
            self._check_message(flow)
        except Blocked as exc:
            self._block(flow, exc.status, exc.inspector, exc.reason)
        except Exception as exc:
            logger.exception("header check failed; blocking %s", flow.id)
            self._block(flow, 403, "proxy", f"internal error: {type(exc).__name__}")

    def _check_message(self, flow: http.HTTPFlow) -> None:
        """Everything decidable from the head: size, hygiene, one authority."""
        req = flow.request
        size = sum(len(k) + len(v) + 4 for k, v in req.headers.fields)
        if size > MAX_HEADER_BYTES:
            raise Blocked(
                431,
                "header-size",
                f"request headers are {size} bytes; the limit is {MAX_HEADER_BYTES}",
            )
        try:
            # `Request.method` upper-cases; the wire spelling is what a server reads.
            hygiene.check_method(req.data.method.decode("ascii", "replace"))
            hygiene.check_fields(req.headers.fields, http2=req.is_http2 or req.is_http3)
            hygiene.check_target(req.method, req.path)
        except hygiene.Malformed as exc:
            raise Blocked(400, "protocol", str(exc)) from exc
        target = self._target(flow)
        if (req.host, req.port) != (target.host, target.port):
            req.host, req.port = target.host, target.port
        if not (req.is_http2 or req.is_http3):
            # Agreed with the connection, so it adds nothing; origin form is what
            # every server reads alike (some honour an absolute-form host instead).
            req.authority = ""

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        try:
            await self._decide(flow)
        except Blocked as exc:
            self._block(flow, exc.status, exc.inspector, exc.reason)
        except Exception as exc:
            logger.exception("request gate failed; blocking %s", flow.id)
            self._block(
                flow, 403, "proxy", f"internal error while inspecting: {type(exc).__name__}"
            )

    async def _decide(self, flow: http.HTTPFlow) -> None:
        runtime = self._holder.current
        target = Target(flow.request.host, flow.request.port)
        if flow.request.trailers:
            # The policy sees headers and body; trailers would travel uninspected.
            raise Blocked(403, "protocol", "requests with trailers are not allowed")
        upgrade = folded(flow.request.headers, _UPGRADE).get(b"upgrade", "").strip()
        if upgrade and upgrade.lower() != "websocket":
            # Past a protocol switch nothing is HTTP any more, so nothing is inspected.
            raise Blocked(403, "protocol", f"Upgrade to {upgrade!r} is not allowed")
        request = policy_request(flow, target)
        started = time.perf_counter()
        decision = runtime.policy.check_request(request)
        if self._metrics is not None:
            self._metrics.inspection.observe(time.perf_counter() - started)
        if decision.verdict is Verdict.BLOCK:
            flow_state(flow).gate = GateNote(decision, request.path)
            raise Blocked(decision.status or 403, decision.inspector, decision.reason)
        try:
            addresses = await runtime.resolver.resolve(target.host)
            runtime.guard.pick(target.host, addresses)
        except ResolveError as exc:
            raise Blocked(403, "egress", str(exc)) from exc
        flow_state(flow).gate = GateNote(decision, request.path)
        if decision.verdict is Verdict.FLAG or runtime.config.logging.allowed_requests:
            # Written before anything leaves: a full disk stops the request here, and a
            # kill at any later moment cannot lose the line of a forwarded request.
            line = record(
                flow, runtime.cage, decision.verdict, decision=decision, path=request.path
            )
            try:
                self._audit.write(line)
            except OSError as exc:
                raise Blocked(
                    503,
                    "audit",
                    f"the audit log cannot be written ({exc.strerror}); nothing was forwarded",
                ) from exc
        elif self._metrics is not None:  # not logged, but counted all the same
            self._metrics.record(record(flow, runtime.cage, decision.verdict, decision=decision))
        injected = runtime.policy.inject(request)
        if self._metrics is not None and injected is not request:
            self._metrics.secrets_injected(runtime.policy.injected(request, injected))
        apply_request(flow, request, injected)

    @staticmethod
    def _target(flow: http.HTTPFlow) -> Target:
        req = flow.request
        sni = flow.client_conn.sni if flow.client_conn.tls else None
        claims = req.headers.get_all("host")
        if req.authority:
            # HTTP/2's :authority, or an HTTP/1.1 absolute-form target inside a tunnel
            # (`GET https://other.example/ HTTP/1.1`): a name the request gives itself.
            claims = [req.authority, *claims]
        try:
            return agree(
                scheme=req.scheme,
                destination=Target(req.host, req.port),
                sni=sni,
                host_header=claims,
            )
        except HostMismatch as exc:
            raise Blocked(403, "host-agreement", str(exc)) from exc

    def _block(self, flow: http.HTTPFlow, status: int, inspector: str, reason: str) -> None:
        flow.response = block_response(status, reason, inspector, flow.request.host)
        state = flow_state(flow)
        state.audited = True
        note = state.gate
        runtime = self._holder.current
        line = record(
            flow,
            runtime.cage,
            Verdict.BLOCK,
            decision=note.decision if note is not None else None,
            inspector=inspector,
            reason=reason,
            path=note.path if note is not None else None,
        )
        try:
            self._audit.write(line)
        except OSError as exc:
            # Nothing left the proxy, so the block stands; only its line is missing.
            logger.error("cannot write the audit line for blocked %s: %s", flow.id, exc)

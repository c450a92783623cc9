"""Closing audit lines: how an inspected exchange ended, and failures found after the gate.

The gate writes every decision before the request leaves (`gate.RequestGate`).
This addon adds what only the end of an exchange knows: a `response` line (status,
sizes, duration) for each request whose decision was logged, and a block line for
flows mitmproxy stopped before the gate could decide (an upload over
`max_request_body`) or that the egress check refused at connect time.
"""

from __future__ import annotations

import logging

from mitmproxy import connection, http

from agentcage.audit.record import AuditRecord
from agentcage.audit.writer import AuditWriter
from agentcage.policy.types import Verdict
from agentcage.proxy.flow_state import GateNote, flow_state
from agentcage.proxy.flows import block_response, record
from agentcage.proxy.runtime import RuntimeHolder

logger = logging.getLogger(__name__)
BODY_LIMIT_ERROR = "body_size_limit"


class ClosingLines:
    def __init__(self, holder: RuntimeHolder, audit: AuditWriter) -> None:
        self._holder = holder
        self._audit = audit

    def response(self, flow: http.HTTPFlow) -> None:
        note = self._closing(flow)
        if note is None:
            return
        runtime = self._holder.current
        status = flow.response.status_code if flow.response is not None else 0
        refused = flow_state(flow).response_block
        if refused is not None:
            # Allowed on the way out, refused on the way back (e.g. an unscrubbable echo).
            inspector, reason = refused
            line = record(
                flow,
                runtime.cage,
                Verdict.BLOCK,
                kind="response",
                inspector=inspector,
                reason=reason,
                path=note.path,
                extra={"status": status},
            )
        else:
            line = record(
                flow,
                runtime.cage,
                note.decision.verdict,
                kind="response",
                path=note.path,
                extra={"status": status},
            )
        try:
            self._audit.write(line)
        except OSError as exc:
            # No closing line, no response body (a streamed body has already gone).
            logger.error("cannot write the audit log: %s", exc)
            if flow.response is not None and not flow.response.stream:
                reason = f"the audit log cannot be written: {exc.strerror}"
                flow.response = block_response(502, reason, "audit", flow.request.host)

    def error(self, flow: http.HTTPFlow) -> None:
        state = flow_state(flow)
        if state.audited or flow.error is None:
            return
        state.audited = True
        runtime = self._holder.current
        message = flow.error.msg
        note = state.gate
        path = note.path if note is not None else runtime.policy.scrub_text(flow.request.path)
        if BODY_LIMIT_ERROR in message:
            limit = runtime.config.max_request_body
            line = record(
                flow,
                runtime.cage,
                Verdict.BLOCK,
                inspector="body-size",
                reason=f"request body larger than max_request_body ({limit} bytes)",
                path=path,
            )
        elif "egress refused" in message:
            line = record(
                flow, runtime.cage, Verdict.BLOCK, inspector="egress", reason=message, path=path
            )
        elif note is not None:
            # Decided and logged at the gate; this line says how the exchange ended.
            line = record(
                flow,
                runtime.cage,
                note.decision.verdict,
                kind="response",
                path=path,
                extra={"error": runtime.policy.scrub_text(message)[:200]},
            )
        else:
            line = record(
                flow,
                runtime.cage,
                Verdict.BLOCK,
                inspector="proxy",
                reason="the request failed before it was inspected",
                path=path,
                extra={"error": runtime.policy.scrub_text(message)[:200]},
            )
        self._audit.write(line)

    def _closing(self, flow: http.HTTPFlow) -> GateNote | None:
        """The gate's note, if this flow still needs its closing line."""
        state = flow_state(flow)
        if state.audited:
            return None
        state.audited = True
        note = state.gate
        if note is None:
            return None
        logged = note.decision.verdict is Verdict.FLAG or state.response_block is not None
        if not logged and not self._holder.current.config.logging.allowed_requests:
            return None
        return note

    def client_connected(self, client: connection.Client) -> None:
        runtime = self._holder.current
        if not runtime.config.logging.proxy_connections:
            return
        peer = client.peername
        self._audit.write(
            AuditRecord(
                kind="connection",
                verdict=Verdict.ALLOW.value,
                cage=runtime.cage,
                client=f"{peer[0]}:{peer[1]}" if peer else "",
                reason="client connected",
            )
        )

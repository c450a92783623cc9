"""Audit lines for requests that were let through (and for those that failed later)."""

from __future__ import annotations

import logging

from mitmproxy import connection, http

from agentcage.policy.audit import AuditRecord
from agentcage.policy.types import Verdict
from agentcage.proxy.auditlog import AuditLog
from agentcage.proxy.flows import METADATA_KEY, RESPONSE_BLOCK, block_response, record
from agentcage.proxy.gate import FlowNote
from agentcage.proxy.runtime import RuntimeHolder

logger = logging.getLogger(__name__)
AUDITED = METADATA_KEY + ".audited"
BODY_LIMIT_ERROR = "body_size_limit"


class AuditTrail:
    """Writes the line for an allowed or flagged request once its response is done.

    Blocks are written by the addon that blocked; this one writes flagged requests
    always, allowed ones when `logging.allowed_requests`, and flows that ended in
    an error (an upload over `max_request_body`, a refused upstream address).
    """

    def __init__(self, holder: RuntimeHolder, audit: AuditLog) -> None:
        self._holder = holder
        self._audit = audit

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(AUDITED):
            return
        flow.metadata[AUDITED] = True
        runtime = self._holder.current
        note = flow.metadata.get(METADATA_KEY)
        decision = note.decision if isinstance(note, FlowNote) else None
        verdict = decision.verdict if decision is not None else Verdict.ALLOW
        refused = flow.metadata.get(RESPONSE_BLOCK)
        quiet = verdict is Verdict.ALLOW and not runtime.config.logging.allowed_requests
        if refused is None and quiet:
            return
        path = (
            note.path
            if isinstance(note, FlowNote)
            else runtime.policy.scrub_text(flow.request.path)
        )
        if refused is not None:
            inspector, reason = refused
            line = record(
                flow, runtime.cage, Verdict.BLOCK, inspector=inspector, reason=reason, path=path
            )
        else:
            line = record(flow, runtime.cage, verdict, decision=decision, path=path)
        try:
            self._audit.write(line)
        except OSError as exc:
            # No audit line, no response (a streamed body has already gone).
            logger.error("cannot write the audit log: %s", exc)
            if flow.response is not None and not flow.response.stream:
                reason = f"the audit log cannot be written: {exc.strerror}"
                flow.response = block_response(502, reason, "audit", flow.request.host)

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

    def error(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(AUDITED) or flow.error is None:
            return
        flow.metadata[AUDITED] = True
        runtime = self._holder.current
        message = flow.error.msg
        note = flow.metadata.get(METADATA_KEY)
        path = (
            note.path
            if isinstance(note, FlowNote)
            else runtime.policy.scrub_text(flow.request.path)
        )
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
        else:
            decision = note.decision if isinstance(note, FlowNote) else None
            verdict = decision.verdict if decision is not None else Verdict.ALLOW
            line = record(
                flow,
                runtime.cage,
                verdict,
                decision=decision,
                path=path,
                extra={"error": runtime.policy.scrub_text(message)[:200]},
            )
        self._audit.write(line)

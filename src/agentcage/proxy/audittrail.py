"""Audit lines for requests that were let through (and for those that failed later)."""

from __future__ import annotations

from mitmproxy import http

from agentcage.policy.types import Verdict
from agentcage.proxy.auditlog import AuditLog
from agentcage.proxy.flows import METADATA_KEY, record
from agentcage.proxy.gate import FlowNote
from agentcage.proxy.runtime import RuntimeHolder

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
        if verdict is Verdict.ALLOW and not runtime.config.logging.allowed_requests:
            return
        path = (
            note.path
            if isinstance(note, FlowNote)
            else runtime.policy.scrub_text(flow.request.path)
        )
        self._audit.write(record(flow, runtime.cage, verdict, decision=decision, path=path))

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

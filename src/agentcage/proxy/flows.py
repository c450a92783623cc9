"""Translation between mitmproxy flows and the policy engine's values."""

from __future__ import annotations

import json
import time

from mitmproxy import connection, http

from agentcage.audit.record import WOULD_BLOCK, AuditRecord, Kind
from agentcage.policy.types import ControlKind, Decision, Frame, Headers, Request, Verdict
from agentcage.proxy.flow_state import flow_state
from agentcage.proxy.host_agreement import Target
from agentcage.proxy.hygiene import REGISTERED_METHODS

LOGGED_METHODS = REGISTERED_METHODS | {"CONNECT"}
BLOCKED_HEADER = "x-agentcage-blocked"  # names the inspector on every answer the proxy makes


def client_of(flow: http.HTTPFlow) -> str:
    return peer_of(flow.client_conn)


def peer_of(conn: connection.Connection) -> str:
    """ "ip:port" of the connection's far end, or "" if unknown."""
    peer = conn.peername
    return f"{peer[0]}:{peer[1]}" if peer else ""


def header_pairs(headers: http.Headers) -> tuple[tuple[str, str], ...]:
    """Header pairs in wire order, decoded as mitmproxy does (UTF-8, surrogate escapes)."""
    return tuple(
        (k.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape"))
        for k, v in headers.fields
    )


def folded(headers: http.Headers, names: frozenset[bytes]) -> dict[bytes, str]:
    """The values of `names` (lower-case) that `headers` has, each as `Headers.get` gives
    it: decoded as mitmproxy decodes, repeated fields joined with ", ".

    One pass for all of them: each `Headers.get` walks every field, lower-casing and
    decoding it, about 3 us a look-up.
    """
    found: dict[bytes, list[bytes]] = {}
    for name, value in headers.fields:
        lowered = name.lower()
        if lowered in names:
            found.setdefault(lowered, []).append(value)
    return {
        name: ", ".join([value.decode("utf-8", "surrogateescape") for value in values])
        for name, values in found.items()
    }


def policy_request(flow: http.HTTPFlow, target: Target) -> Request:
    req = flow.request
    return Request(
        method=req.method.upper(),
        scheme=req.scheme,
        host=target.host,
        port=target.port,
        path=req.path,
        headers=Headers(header_pairs(req.headers)),
        body=req.raw_content or b"",
        flow_id=flow.id,
        client=client_of(flow),
    )


def apply_request(flow: http.HTTPFlow, before: Request, after: Request) -> None:
    """Write what `Policy.inject` changed back into the flow."""
    req = flow.request
    if after.path != before.path:
        req.path = after.path
    if after.headers != before.headers:
        req.headers = http.Headers(
            [
                (k.encode("utf-8", "surrogateescape"), v.encode("utf-8", "surrogateescape"))
                for k, v in after.headers
            ]
        )
    if after.body != before.body:
        req.raw_content = after.body
        if "content-length" in req.headers:
            req.headers["content-length"] = str(len(after.body))


def policy_frame(
    flow: http.HTTPFlow,
    payload: bytes,
    is_text: bool,
    from_client: bool,
    control: ControlKind | None = None,
) -> Frame:
    return Frame(
        host=flow.request.host,
        port=flow.request.port,
        path=flow.request.path,
        payload=payload,
        is_text=is_text,
        from_client=from_client,
        flow_id=flow.id,
        client=client_of(flow),
        control=control,
    )


def block_response(status: int, reason: str, inspector: str, host: str) -> http.Response:
    body = json.dumps(
        {"blocked": True, "reason": reason, "inspector": inspector, "host": host}
    ).encode()
    headers = {"content-type": "application/json", BLOCKED_HEADER: inspector or "proxy"}
    if status == 429:
        # Budgets refill every second; clients that honour it (npm, urllib3) back off
        # instead of failing.
        headers["retry-after"] = "1"
    return http.Response.make(status, body, headers)


def record(
    flow: http.HTTPFlow,
    cage: str,
    verdict: Verdict,
    *,
    decision: Decision | None = None,
    inspector: str = "",
    reason: str = "",
    kind: Kind = "http",
    path: str | None = None,
    sizes: tuple[int, int] | None = None,
    extra: dict[str, object] | None = None,
) -> AuditRecord:
    """The audit line for `flow`; sizes and timing from whatever has happened so far.

    `sizes` is (bytes_in, bytes_out) when the caller knows better than the flow
    (a WebSocket message).
    """
    req, resp = flow.request, flow.response
    if sizes is None:
        streamed = flow_state(flow).streamed_bytes
        received = len(resp.raw_content or b"") if resp is not None else 0
        sizes = (received if streamed is None else streamed, len(req.raw_content or b""))
    start = req.timestamp_start or time.time()
    end = (resp.timestamp_end if resp else None) or time.time()
    if decision is not None:
        inspector = inspector or decision.inspector
        reason = reason or decision.reason
    severity = ""
    if decision is not None:
        first = decision.blocking or (decision.findings[0] if decision.findings else None)
        severity = first.severity if first else ""
    return AuditRecord(
        kind=kind,
        verdict=verdict.value,
        cage=cage,
        flow_id=flow.id,
        client=client_of(flow),
        # An unregistered method is agent-chosen bytes (maybe a secret): not logged.
        method=req.method if req.method in LOGGED_METHODS else "",
        scheme=req.scheme,
        host=req.host,
        port=req.port,
        path=req.path if path is None else path,
        inspector=inspector,
        reason=reason,
        rules=decision.rules if decision is not None else (),
        severity=severity,
        bytes_in=sizes[0],
        bytes_out=sizes[1],
        duration_ms=round(max(0.0, end - start) * 1000, 3),
        extra=dict(extra or {}),
        learn=_learned(verdict, decision),
    )


def _learned(verdict: Verdict, decision: Decision | None) -> str:
    """WOULD_BLOCK for a line of something learn mode let through; else empty."""
    if decision is None or not decision.would_block or verdict is Verdict.BLOCK:
        return ""
    return WOULD_BLOCK


def frame_record(
    flow: http.HTTPFlow,
    cage: str,
    verdict: Verdict,
    *,
    size: int,
    from_client: bool,
    decision: Decision | None = None,
    inspector: str = "",
    reason: str = "",
    extra: dict[str, object] | None = None,
) -> AuditRecord:
    """The audit line for one WebSocket frame of `size` bytes (a message or a control frame)."""
    note = flow_state(flow).gate
    return record(
        flow,
        cage,
        verdict,
        decision=decision,
        inspector=inspector,
        reason=reason,
        kind="websocket",
        path=note.path if note is not None else None,  # the handshake's, as the agent sent it
        sizes=(0, size) if from_client else (size, 0),
        extra={"direction": "to_server" if from_client else "to_client", **(extra or {})},
    )

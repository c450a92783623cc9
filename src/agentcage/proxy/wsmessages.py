"""Every WebSocket message after the handshake goes through the policy."""

from __future__ import annotations

import logging

from mitmproxy import ctx, http
from mitmproxy.websocket import WebSocketMessage

from agentcage.audit.writer import AuditWriter
from agentcage.policy.types import Decision, Verdict
from agentcage.proxy.flows import frame_record, policy_frame
from agentcage.proxy.layer_patches import close_event
from agentcage.proxy.runtime import RuntimeHolder

logger = logging.getLogger(__name__)
POLICY_VIOLATION = 1008
MAX_CLOSE_REASON = 120  # a close frame's reason must fit in 123 bytes


class WebSocketGate:
    """check_frame both ways; inject into client messages, scrub server messages.

    A blocked message is dropped and the connection closed with 1008; so is any
    message whose inspection fails (a packed message that cannot be unpacked).
    """

    def __init__(self, holder: RuntimeHolder, audit: AuditWriter) -> None:
        self._holder = holder
        self._audit = audit

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        assert flow.websocket is not None
        # mitmproxy keeps every message of a connection; earlier ones are already
        # relayed, and keeping them would grow without bound on a long-lived socket.
        del flow.websocket.messages[:-1]
        message = flow.websocket.messages[-1]
        if message.dropped:
            return
        runtime = self._holder.current
        try:
            frame = policy_frame(flow, message.content, message.is_text, message.from_client)
            decision = runtime.policy.check_frame(frame)
            if decision.verdict is Verdict.BLOCK:
                self._close(flow, message, decision.inspector, decision.reason, decision)
                return
            if message.from_client:
                injected = runtime.policy.inject_frame(frame)
                if injected.payload != message.content:
                    message.content = injected.payload
            else:
                # As for HTTP responses: packed messages unpacked, pieces masked.
                clean = runtime.policy.echo_guard(frame.host).scrub(message.content)
                if clean != message.content:
                    message.content = clean
            if decision.verdict is Verdict.FLAG or runtime.config.logging.allowed_requests:
                # The hook runs before the message is relayed: no line, no message.
                self._write(flow, decision.verdict, decision, len(frame.payload), frame.from_client)
        except OSError as exc:
            logger.error("cannot write the audit log: %s", exc)
            self._close(flow, message, "audit", "the audit log cannot be written", None)
        except Exception as exc:
            logger.exception("WebSocket inspection failed on %s", flow.id)
            self._close(flow, message, "proxy", f"inspection error: {type(exc).__name__}", None)

    def _close(
        self,
        flow: http.HTTPFlow,
        message: WebSocketMessage,
        inspector: str,
        reason: str,
        decision: Decision | None,
    ) -> None:
        message.drop()  # type: ignore[no-untyped-call]
        try:
            self._write(
                flow,
                Verdict.BLOCK,
                decision,
                len(message.content),
                message.from_client,
                inspector,
                reason,
            )
        except OSError as exc:
            # Dropped and closed all the same; only the line is missing.
            logger.error("cannot write the audit line for a blocked message: %s", exc)
        finally:
            text = f"blocked by agentcage ({inspector}): {reason}"
            proxyserver = ctx.master.addons.get("proxyserver")  # type: ignore[no-untyped-call]
            proxyserver.inject_event(
                close_event(flow, POLICY_VIOLATION, _truncate(text, MAX_CLOSE_REASON))
            )

    def _write(
        self,
        flow: http.HTTPFlow,
        verdict: Verdict,
        decision: Decision | None,
        size: int,
        from_client: bool,
        inspector: str = "",
        reason: str = "",
    ) -> None:
        self._audit.write(
            frame_record(
                flow,
                self._holder.current.cage,
                verdict,
                size=size,
                from_client=from_client,
                decision=decision,
                inspector=inspector,
                reason=reason,
            )
        )


def _truncate(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "..."

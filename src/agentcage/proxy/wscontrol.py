"""WebSocket control frames (ping, pong, close) go through the policy like messages.

mitmproxy 11.0.2 relays pings, pongs and close frames inside its WebSocket layer,
with no addon hook: their payloads (up to 125 bytes a frame, a close reason up to
123) would cross uninspected in both directions. `install` patches that layer
(pinned like `layer_patches`) to stop each control frame at a new blocking hook,
`websocket_control`, and to relay only what `ControlFrameGate` passed. Text and
binary messages still take mitmproxy's own path (and `WebSocketGate`).

The hook fails closed: a `ControlFrame` starts out unrelayable, so if no addon
answers, or the addon raises, the connection is closed with 1008 instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import wsproto.events
from mitmproxy import http
from mitmproxy.proxy import commands, events
from mitmproxy.proxy.layers.websocket import WebsocketConnection, WebsocketLayer
from wsproto.connection import ConnectionState

from agentcage.audit.writer import AuditWriter
from agentcage.policy.types import ControlKind, Decision, Verdict
from agentcage.proxy import layer_patches
from agentcage.proxy.flows import frame_record, policy_frame
from agentcage.proxy.layer_patches import close_both
from agentcage.proxy.mitmproxy_pin import patches_mitmproxy
from agentcage.proxy.runtime import RuntimeHolder

logger = logging.getLogger(__name__)
POLICY_VIOLATION = 1008
MAX_PAYLOAD = 125  # RFC 6455 5.5: a control frame's payload
MAX_REASON = 123  # a close frame's payload less its 2-byte code
MAX_OUR_REASON = 120  # what WebSocketGate allows its own close reasons too

Relay = Callable[[WebsocketLayer, events.Event], Generator[Any, Any, None]]


@dataclass
class ControlFrame:
    """One control frame held at the hook; `relay` set to bytes lets it go on.

    `payload` is a ping's or pong's payload, or a close frame's reason (UTF-8).
    Left at None, `relay` closes both sides with 1008 and `close_reason`.
    """

    flow: http.HTTPFlow
    kind: ControlKind
    from_client: bool
    payload: bytes
    code: int = 0  # close frames only
    relay: bytes | None = None
    close_reason: str = "blocked by agentcage (proxy): control frame not inspected"


@dataclass
class WebsocketControlHook(commands.StartHook):  # type: ignore[no-untyped-call]
    """A WebSocket ping, pong or close frame arrived; it waits for the addons' verdict."""

    control: ControlFrame


@patches_mitmproxy
def install() -> None:
    layer_patches.install()  # first: CloseInjected events must meet its patch
    original: Relay = WebsocketLayer.relay_messages

    def relay_messages(self: WebsocketLayer, event: events.Event) -> Generator[Any, Any, None]:
        if isinstance(event, (events.DataReceived, events.ConnectionClosed)):
            yield from _relay(self, event, original)
        else:  # messages and closes injected by addons
            yield from original(self, event)

    WebsocketLayer.relay_messages = relay_messages  # type: ignore[method-assign]


def _relay(
    layer: WebsocketLayer, event: events.ConnectionEvent, relay_messages: Relay
) -> Generator[Any, Any, None]:
    from_client = event.connection == layer.context.client
    src, dst = (
        (layer.client_ws, layer.server_ws) if from_client else (layer.server_ws, layer.client_ws)
    )
    src.receive_data(event.data if isinstance(event, events.DataReceived) else None)
    # Everything buffered is parsed now: mitmproxy's relay, handed the messages
    # below, parses again, and must find nothing but what it was handed.
    received = list(src.events())
    messages: list[wsproto.events.Event] = []
    for ws_event in received:
        if not isinstance(
            ws_event, (wsproto.events.Ping, wsproto.events.Pong, wsproto.events.CloseConnection)
        ):
            messages.append(ws_event)
            continue
        yield from _messages(layer, src, messages, relay_messages)
        messages = []
        yield from _control(layer, ws_event, from_client, dst)
        if layer._handle_event == layer.done:
            return
    yield from _messages(layer, src, messages, relay_messages)


def _messages(
    layer: WebsocketLayer,
    src: WebsocketConnection,
    messages: list[wsproto.events.Event],
    relay_messages: Relay,
) -> Generator[Any, Any, None]:
    """Text and binary frames take mitmproxy's path: its message hook, then relay."""
    if not messages:
        return
    if src.state is ConnectionState.CLOSED:
        # Only after a close in this same batch, which already ended the layer.
        logger.debug("dropping %d frames received before a close", len(messages))
        return
    src._events.extend(messages)
    yield from relay_messages(layer, events.DataReceived(src.conn, b""))


def _control(
    layer: WebsocketLayer,
    ws_event: wsproto.events.Event,
    from_client: bool,
    dst: WebsocketConnection,
) -> Generator[Any, Any, None]:
    if isinstance(ws_event, wsproto.events.CloseConnection):
        reason = (ws_event.reason or "").encode()
        control = ControlFrame(layer.flow, "close", from_client, reason, ws_event.code)
    elif isinstance(ws_event, wsproto.events.Ping):
        control = ControlFrame(layer.flow, "ping", from_client, bytes(ws_event.payload))
    else:
        assert isinstance(ws_event, wsproto.events.Pong)
        control = ControlFrame(layer.flow, "pong", from_client, bytes(ws_event.payload))
    yield WebsocketControlHook(control)
    relay = control.relay
    if relay is None:
        yield from close_both(layer, POLICY_VIOLATION, control.close_reason)
    elif control.kind == "close":
        text = cut_text(relay.decode("utf-8", "replace"), MAX_REASON)
        yield from close_both(layer, control.code, text, by_client=from_client)
    elif dst.state is ConnectionState.OPEN:
        payload = relay[:MAX_PAYLOAD]  # a scrubbed payload may have grown
        frame = (
            wsproto.events.Ping(payload) if control.kind == "ping" else wsproto.events.Pong(payload)
        )
        yield dst.send2(frame)


def cut_text(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, never inside a character."""
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


class ControlFrameGate:
    """check_frame on every control frame; scrub those from the server.

    A blocked frame is not relayed: both sides are closed with 1008 and the line
    says which frame it was. Placeholders are never injected into control frames
    (the check still blocks one headed for a host outside its rule). The audit
    line is written before the frame is relayed; if it cannot be, nothing is.
    """

    def __init__(self, holder: RuntimeHolder, audit: AuditWriter) -> None:
        self._holder = holder
        self._audit = audit

    def websocket_control(self, control: ControlFrame) -> None:
        runtime = self._holder.current
        try:
            frame = policy_frame(
                control.flow,
                control.payload,
                control.kind == "close",
                control.from_client,
                control=control.kind,
            )
            decision = runtime.policy.check_frame(frame)
            if decision.verdict is Verdict.BLOCK:
                self._block(control, decision.inspector, decision.reason, decision)
                return
            relay = control.payload
            if not control.from_client:
                relay = runtime.policy.scrub(relay)
            if decision.verdict is Verdict.FLAG or runtime.config.logging.allowed_requests:
                self._write(control, decision.verdict, decision)
            control.relay = relay
        except Exception as exc:
            logger.exception("WebSocket control frame inspection failed on %s", control.flow.id)
            self._block(control, "proxy", f"inspection error: {type(exc).__name__}", None)

    def _block(
        self, control: ControlFrame, inspector: str, reason: str, decision: Decision | None
    ) -> None:
        text = f"blocked by agentcage ({inspector}): {reason}"
        control.close_reason = cut_text(text, MAX_OUR_REASON)
        control.relay = None
        try:
            self._write(control, Verdict.BLOCK, decision, inspector, reason)
        except Exception:
            logger.exception("cannot write the audit line for a blocked control frame")

    def _write(
        self,
        control: ControlFrame,
        verdict: Verdict,
        decision: Decision | None,
        inspector: str = "",
        reason: str = "",
    ) -> None:
        extra: dict[str, object] = {"frame": control.kind}
        if control.kind == "close":
            extra["close_code"] = control.code
        self._audit.write(
            frame_record(
                control.flow,
                self._holder.current.cage,
                verdict,
                size=len(control.payload),
                from_client=control.from_client,
                decision=decision,
                inspector=inspector,
                reason=reason,
                extra=extra,
            )
        )

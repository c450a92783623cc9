"""Two narrow extensions of mitmproxy's protocol layers (mitmproxy is pinned to 11.0.2).

1. `body_size_limit` for requests only. mitmproxy applies that option to both
   directions; we want the cage's `max_request_body` to reject uploads early (on
   Content-Length, or as soon as a chunked body passes the limit, without
   buffering the rest) while downloads of any size still reach the agent.
2. Closing a WebSocket with a chosen close code. Addons can drop a message but
   not end the connection; a blocked frame must close both sides with 1008 so the
   agent sees why.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import wsproto.events
from mitmproxy import http
from mitmproxy.net.http.http1 import expected_http_body_size
from mitmproxy.proxy import commands, events
from mitmproxy.proxy.layers import websocket as ws_layer
from mitmproxy.proxy.layers.http import HttpStream
from mitmproxy.proxy.layers.websocket import WebsocketLayer, WebSocketMessageInjected
from mitmproxy.utils import human
from mitmproxy.websocket import WebSocketMessage
from wsproto.connection import ConnectionState
from wsproto.frame_protocol import Opcode

from agentcage.proxy.mitmproxy_pin import patches_mitmproxy


@dataclass
class CloseInjected(WebSocketMessageInjected):
    """Asks the WebSocket layer to close both sides with `code` and `reason`."""

    code: int = 1008
    reason: str = ""


def close_event(flow: http.HTTPFlow, code: int, reason: str) -> CloseInjected:
    # The message is a carrier only: routing inside mitmproxy needs one.
    return CloseInjected(flow, WebSocketMessage(Opcode.TEXT, True, b""), code, reason)


@patches_mitmproxy
def install() -> None:
    """Apply both patches."""
    _patch_body_limit()
    _patch_websocket_close()


def _patch_body_limit() -> None:
    original = HttpStream.check_body_size

    def check_body_size(self: HttpStream, request: bool) -> Generator[Any, Any, bool]:
        if not request:
            return False
        # mitmproxy calls this for every chunk of a request body and re-reads and
        # re-parses both options each time; only a body over the limit (or the
        # streaming option, which we never set) needs mitmproxy's own handling.
        opts = self.context.options
        limit = _parse_limit(opts.body_size_limit)
        if limit is None or opts.stream_large_bodies:
            return (yield from original(self, request))
        if self.request_body_buf:
            size: int | None = len(self.request_body_buf)
        else:
            try:
                size = expected_http_body_size(self.flow.request, None)
            except ValueError:
                size = None
        if size is None or size <= limit:
            return False
        return (yield from original(self, request))

    HttpStream.check_body_size = check_body_size  # type: ignore[method-assign]


@functools.lru_cache(maxsize=8)
def _parse_limit(option: str | None) -> int | None:
    return human.parse_size(option)


def _patch_websocket_close() -> None:
    original = WebsocketLayer.relay_messages

    def relay_messages(self: WebsocketLayer, event: events.Event) -> Generator[Any, Any, None]:
        if isinstance(event, CloseInjected):
            yield from close_both(self, event.code, event.reason)
        else:
            yield from original(self, event)

    WebsocketLayer.relay_messages = relay_messages  # type: ignore[method-assign]


def close_both(
    layer: WebsocketLayer, code: int, reason: str, *, by_client: bool = False
) -> Generator[Any, Any, None]:
    """Send a close frame with `code` and `reason` to both sides and end the layer."""
    flow = layer.flow
    assert flow.websocket is not None
    if layer._handle_event == layer.done:  # already closed
        return
    close = wsproto.events.CloseConnection(code=code, reason=reason)
    flow.websocket.close_code = code
    flow.websocket.close_reason = reason
    flow.websocket.closed_by_client = by_client
    flow.websocket.timestamp_end = time.time()
    for conn in (layer.server_ws, layer.client_ws):
        if conn.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            yield conn.send2(close)
        yield commands.CloseConnection(conn.conn)
    yield ws_layer.WebsocketEndHook(flow)
    flow.live = False
    layer._handle_event = layer.done

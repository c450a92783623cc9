"""Only HTTP(S) and WebSocket leave the cage: raw TCP/UDP streams are refused.

mitmproxy relays anything it cannot parse as HTTP as an uninspected byte stream
(a CONNECT tunnel speaking SSH, TLS around a non-HTTP protocol, an `Upgrade:` to
something other than WebSocket). Nothing in such a stream would reach the
policy, so the stream layer is swapped for one that closes the client connection,
and a switch to anything but WebSocket is refused (the gate refuses the request;
this catches an upstream that switches anyway).
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

from mitmproxy import http
from mitmproxy.proxy import commands, events, layer
from mitmproxy.proxy.layers import DNSLayer, TCPLayer, UDPLayer

from agentcage.audit.record import AuditRecord
from agentcage.audit.writer import AuditWriter
from agentcage.policy.types import Verdict
from agentcage.proxy.flow_state import flow_state
from agentcage.proxy.flows import block_response, record
from agentcage.proxy.runtime import RuntimeHolder

logger = logging.getLogger(__name__)
REASON = "only HTTP(S) and WebSocket traffic may leave the cage; raw streams are refused"


class RefusedStream(layer.Layer):
    """Closes the client side at once; nothing is opened upstream."""

    def _handle_event(self, event: events.Event) -> Generator[Any, Any, None]:
        if isinstance(event, events.Start):
            yield commands.CloseConnection(self.context.client)


class PassthroughLayer(TCPLayer):
    """A raw TCP relay the user asked for (`protocol: opaque`, opaque.py): not refused."""


class RawStreamRefusal:
    def __init__(self, holder: RuntimeHolder, audit: AuditWriter) -> None:
        self._holder = holder
        self._audit = audit

    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        if not isinstance(nextlayer.layer, (TCPLayer, UDPLayer, DNSLayer)):
            return
        if isinstance(nextlayer.layer, PassthroughLayer):
            return
        context = nextlayer.context
        nextlayer.layer = RefusedStream(context)
        host, port = context.server.address or ("", 0)
        peer = context.client.peername
        self._audit.write(
            AuditRecord(
                kind="connection",
                verdict=Verdict.BLOCK.value,
                cage=self._holder.current.cage,
                client=f"{peer[0]}:{peer[1]}" if peer else "",
                host=str(host),
                port=int(port),
                inspector="protocol",
                reason=REASON,
            )
        )

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        resp = flow.response
        if resp is None or resp.status_code != 101:
            return
        if resp.headers.get("upgrade", "").strip().lower() != "websocket":
            reason = f"upstream switched protocols: {REASON}"
            flow.response = block_response(502, reason, "protocol", flow.request.host)
            flow_state(flow).audited = True
            runtime = self._holder.current
            self._audit.write(
                record(flow, runtime.cage, Verdict.BLOCK, inspector="protocol", reason=reason)
            )

"""A plain CONNECT on the explicit listener, answered without mitmproxy's HTTP layer.

A client that honours `HTTPS_PROXY` opens each connection with `CONNECT host:443`.
mitmproxy serves that through its whole HTTP layer: a flow, the `http_connect` and
`http_connected` hooks with an asyncio task each, an HTTP/1 connection layer that
stays under the tunnel for its life. That was 0.6-0.7 ms of the proxy's CPU per
connection (docs/proxy.md "A new connection on the transparent path"), and no addon of
the proxy acts on a CONNECT of the explicit listener: the target is judged on the
requests inside the tunnel, with the SNI and Host held to it (`host_agreement`).

So a CONNECT whose head is plainly well formed is answered here, the way mitmproxy
answers it (the target parsed by mitmproxy's own `parse_authority`, the same 200 line,
the same next-layer decision for the tunnel's content); everything else (a head with a
body header, an odd byte, HTTP/2, any other method, a CONNECT on a transparent
listener, which refuses it) takes mitmproxy's path unchanged, with its errors and
their audit lines. `tests/unit/proxy/test_connect_tunnels.py` holds the addons to the
claim that none of them has a CONNECT hook this would skip.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from mitmproxy.addons import next_layer
from mitmproxy.net.http import url
from mitmproxy.proxy import commands, events, layer
from mitmproxy.proxy.context import Context

# A longer head is legal but not plain: mitmproxy's path takes it, with its limit. A
# client's usual head is 100-300 bytes; the bound also caps how often mitmproxy asks for
# the decision again (once per piece) while a slow client sends its head.
HEAD_LIMIT = 2048
# The mode spec of the explicit listener (`server.listen_modes`); the transparent
# listeners are `regular@host:port` and refuse CONNECT on mitmproxy's path.
EXPLICIT_MODE = "regular"

_REQUEST_LINE = re.compile(
    rb"CONNECT ([0-9A-Za-z._-]+:[0-9]{1,5}|\[[0-9A-Fa-f:.]+\]:[0-9]{1,5})"
    rb" HTTP/(1\.[01])\r\n"
)
# A field line of RFC 9110's grammar, visible ASCII only: no obs-fold, no bare CR or LF.
_FIELD = re.compile(
    rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?[ \t]*\r\n"
)
# Where mitmproxy's HTTP/1 server (h11's receive buffer) sees a head end.
_BLANK_LINE = re.compile(rb"\n\r?\n")
# A CONNECT has no body; a head that frames one is left to mitmproxy's checks.
_BODY_FIELDS = frozenset({b"content-length", b"transfer-encoding"})


@dataclass(frozen=True, slots=True)
class ConnectHead:
    """A plain CONNECT request head: where to, and how long it was."""

    host: str
    port: int
    http_version: bytes
    size: int


class NotPlain(Exception):
    """A head this module leaves to mitmproxy's HTTP layer."""


class Incomplete(Exception):
    """The head may yet be plain: wait for more bytes."""


def parse_connect_head(data: bytes) -> ConnectHead:
    """The CONNECT head at the start of `data`; NotPlain or Incomplete otherwise."""
    blank = _BLANK_LINE.search(data, 0, HEAD_LIMIT)
    if blank is None:
        if len(data) >= HEAD_LIMIT or not (
            data.startswith(b"CONNECT ") or b"CONNECT ".startswith(data)
        ):
            raise NotPlain
        raise Incomplete
    end = blank.start() - 1  # where "\r\n\r\n" starts
    if data[end : blank.end()] != b"\r\n\r\n":
        raise NotPlain  # a bare LF ends the head for mitmproxy (as for h11)
    line = _REQUEST_LINE.match(data)
    if line is None:
        raise NotPlain
    pos = line.end()
    while pos < end + 2:
        field = _FIELD.match(data, pos)
        if field is None or field.group(1).lower() in _BODY_FIELDS:
            raise NotPlain
        pos = field.end()
    if pos != end + 2:
        raise NotPlain
    try:
        host, port = url.parse_authority(line.group(1), check=True)
    except ValueError:
        raise NotPlain from None
    if not port:
        raise NotPlain  # mitmproxy refuses a CONNECT without a port, or to port 0
    return ConnectHead(host, port, b"HTTP/" + line.group(2), end + 4)


class OpenedTunnel(layer.Layer):
    """Answers the CONNECT head and hands the rest of the connection to the next layer."""

    def __init__(self, context: Context, head: ConnectHead) -> None:
        super().__init__(context)
        self._head = head
        self._consumed = 0
        self.child_layer: layer.Layer | None = None

    def _handle_event(self, event: events.Event) -> Generator[Any, Any, None]:
        if self.child_layer is not None:
            yield from self.child_layer.handle_event(event)
        elif isinstance(event, events.DataReceived) and event.connection == self.context.client:
            yield from self._read_head(event.data)
        elif isinstance(event, events.ConnectionClosed):
            yield commands.CloseConnection(self.context.client)

    def _read_head(self, data: bytes) -> Generator[Any, Any, None]:
        # The decision was made with the whole head received, so the replayed events
        # hold it; a tunnel's first bytes may already follow it.
        wanted = self._head.size - self._consumed
        self._consumed += min(wanted, len(data))
        if len(data) < wanted:
            return
        self.context.server.address = (self._head.host, self._head.port)
        yield commands.SendData(
            self.context.client, self._head.http_version + b" 200 Connection established\r\n\r\n"
        )
        self.child_layer = layer.NextLayer(self.context)
        yield from self.child_layer.handle_event(events.Start())
        if len(data) > wanted:
            yield from self.child_layer.handle_event(
                events.DataReceived(self.context.client, data[wanted:])
            )


class LayerChoice(next_layer.NextLayer):
    """mitmproxy's next-layer decisions, with a plain CONNECT served by `OpenedTunnel`."""

    name = "nextlayer"  # mitmproxy's own addon's name: its proxy server looks for it

    def _setup_explicit_http_proxy(  # type: ignore[override]
        self, context: Context, data_client: bytes
    ) -> layer.Layer:
        if context.client.proxy_mode.full_spec == EXPLICIT_MODE and data_client[:1] == b"C":
            try:
                return OpenedTunnel(context, parse_connect_head(data_client))
            except Incomplete:
                raise next_layer.NeedsMoreData from None
            except NotPlain:
                pass
        return super()._setup_explicit_http_proxy(context, data_client)

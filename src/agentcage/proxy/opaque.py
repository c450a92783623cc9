"""Opaque passthrough ports: bytes relayed to one configured host, audited, not inspected.

A `network.ports` rule with `protocol: opaque` (say `db.example.com` on 5432) is the
user's explicit statement that some non-HTTP protocol may leave uninspected. Its
transparent listener is a mitmproxy TCP `reverse` listener to that host; through the
explicit proxy it is `CONNECT db.example.com:5432`, that host and port exactly. This
addon picks the plain TCP layer for both before mitmproxy's own choice (which would
terminate TLS, or refuse the raw stream), so the bytes pass untouched, while egress
pinning still resolves and vets the address.
Nothing in the stream is scanned, injected or redacted: what is enforced and audited is
the host, the port, the byte counts and the duration. The opening line is written
before anything is relayed; if it cannot be, the connection is killed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from mitmproxy import tcp
from mitmproxy.proxy import layer

from agentcage.audit.record import AuditRecord
from agentcage.audit.writer import AuditWriter
from agentcage.policy.types import Verdict
from agentcage.proxy.flows import peer_of
from agentcage.proxy.rawstreams import PassthroughLayer
from agentcage.proxy.transparent import TransparentEntry

logger = logging.getLogger(__name__)
INSPECTOR = "opaque"
REASON = "opaque passthrough (network.ports): bytes relayed uninspected"


@dataclass
class _Counts:
    started: float = field(default_factory=time.monotonic)
    to_server: int = 0
    to_client: int = 0


class OpaquePassthrough:
    """Must be added before mitmproxy's NextLayer addon, which leaves a chosen layer alone.

    The relay starts once the client has sent its first bytes: a protocol whose server
    speaks first (SMTP, MySQL) waits for the client forever.
    """

    def __init__(self, entry: TransparentEntry, audit: AuditWriter) -> None:
        self._entry = entry
        self._audit = audit
        self._counts: dict[str, _Counts] = {}

    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        context = nextlayer.context
        if nextlayer.layer is not None:
            return
        listeners = self._entry.listeners
        listener = listeners.of(context.client)
        if len(context.layers) == 1:  # right after a listener: the transparent opaque port
            if listener is not None and listener.opaque_to is not None:
                nextlayer.layer = PassthroughLayer(context)
        elif listener is None and context.server.address is not None:
            # Inside a CONNECT tunnel of the explicit listener: relayed only if the
            # target is an opaque port's own host and port.
            host, port = context.server.address
            if listeners.opaque_to(str(host), int(port)):
                nextlayer.layer = PassthroughLayer(context)

    def tcp_start(self, flow: tcp.TCPFlow) -> None:
        self._counts[flow.id] = _Counts()
        try:
            self._audit.write(self._line(flow, _Counts(), closing=False))
        except OSError as exc:
            logger.error("cannot audit an opaque connection; closing it: %s", exc)
            flow.kill()  # type: ignore[no-untyped-call]

    def tcp_message(self, flow: tcp.TCPFlow) -> None:
        counts = self._counts.get(flow.id)
        if counts is None or not flow.messages:
            return
        message = flow.messages[-1]
        if message.from_client:
            counts.to_server += len(message.content)
        else:
            counts.to_client += len(message.content)
        # mitmproxy keeps every message of a flow; a long stream must not grow memory.
        del flow.messages[:-1]

    def tcp_end(self, flow: tcp.TCPFlow) -> None:
        self._close(flow)

    def tcp_error(self, flow: tcp.TCPFlow) -> None:
        self._close(flow)

    def _close(self, flow: tcp.TCPFlow) -> None:
        counts = self._counts.pop(flow.id, None)
        if counts is None:
            return
        try:
            self._audit.write(self._line(flow, counts, closing=True))
        except OSError as exc:
            logger.error("cannot write the closing line of opaque %s: %s", flow.id, exc)

    def _line(self, flow: tcp.TCPFlow, counts: _Counts, *, closing: bool) -> AuditRecord:
        host, port = flow.server_conn.address or ("", 0)
        extra: dict[str, object] = {"phase": "close" if closing else "open"}
        if closing and flow.error is not None:
            extra["error"] = flow.error.msg
        return AuditRecord(
            kind="connection",
            verdict=Verdict.FLAG.value,  # let through, and nothing in it was looked at
            cage=self._entry.cage,
            flow_id=flow.id,
            client=peer_of(flow.client_conn),
            scheme="tcp",
            host=str(host),
            port=int(port),
            inspector=INSPECTOR,
            reason=REASON,
            bytes_in=counts.to_client,
            bytes_out=counts.to_server,
            duration_ms=round((time.monotonic() - counts.started) * 1000, 3) if closing else 0.0,
            extra=extra,
        )

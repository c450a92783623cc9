"""Transparent listeners: programs that ignore proxy settings, held to the same chain.

The DNS sidecar answers admitted names with the proxy's address (`dns run
--steer-to`), so a program that never heard of `HTTPS_PROXY` connects straight to
one of these listeners. They are mitmproxy `regular` listeners, which serve a
ClientHello arriving without CONNECT with a certificate for its SNI and take the
upstream from Host or `:authority`; the gate's host agreement then binds SNI and
Host together. What a CONNECT would have said the listener must establish itself:

- TLS ports get TLS with an SNI that is a name (no SNI: the client dialled an IP
  literal, and there is nothing to judge); plain ports get plain HTTP;
- the Host names the port the client connected to, and a name, not an address;
- no CONNECT: the explicit listener is the place for that.

See docs/transparent.md for why DNS steering was chosen.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mitmproxy import connection, http
from mitmproxy.net.tls import starts_like_tls_record
from mitmproxy.proxy import layer
from mitmproxy.proxy.layers import tls

from agentcage.audit.record import AuditRecord
from agentcage.audit.writer import AuditWriter
from agentcage.config.constants import WEB_PORTS, Protocol
from agentcage.policy.types import Verdict
from agentcage.proxy.flow_state import flow_state
from agentcage.proxy.flows import block_response, peer_of, record
from agentcage.proxy.rawstreams import RefusedStream
from agentcage.proxy.runtime import RuntimeHolder

if TYPE_CHECKING:
    from agentcage.config.schema import CageConfig


logger = logging.getLogger(__name__)
INSPECTOR = "transparent"
# Refusals of whole connections written per second; the rest are counted into the next
# line, so an agent scanning the listeners cannot flood the audit log.
LINES_PER_SECOND = 20


class NotServed(Exception):
    """A connection or request on a transparent listener that the listener cannot serve."""


@dataclass(frozen=True, slots=True)
class Listener:
    port: int
    protocol: Protocol
    opaque_to: str | None = None  # the one host an opaque port relays to

    @property
    def tls(self) -> bool:
        return self.protocol == "https"


class Listeners:
    """The transparent listeners on `address` that `config` asks for."""

    def __init__(self, address: str, config: CageConfig) -> None:
        self.address = address
        self._ports: dict[int, Listener] = {
            port: Listener(port, protocol) for port, protocol in WEB_PORTS.items()
        }
        for rule in config.network.ports:
            opaque_to = rule.host if rule.protocol == "opaque" else None
            self._ports[rule.port] = Listener(rule.port, rule.protocol, opaque_to)

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(sorted(self._ports))

    def modes(self) -> list[str]:
        """mitmproxy mode specs: `regular` per inspected port, a TCP `reverse` per opaque one."""
        return [self._mode(self._ports[port]) for port in self.ports]

    def _mode(self, listener: Listener) -> str:
        at = f"@{self.address}:{listener.port}"
        if listener.opaque_to is not None:
            return f"reverse:tcp://{listener.opaque_to}:{listener.port}{at}"
        return f"regular{at}"

    def opaque_to(self, host: str, port: int) -> bool:
        """Whether `host:port` is an opaque port's one destination."""
        listener = self._ports.get(port)
        if listener is None or listener.opaque_to is None:
            return False
        return host.lower().rstrip(".") == listener.opaque_to.lower().rstrip(".")

    def of(self, client: connection.Client) -> Listener | None:
        """The transparent listener `client` connected to; None for the explicit one."""
        port = client.proxy_mode.custom_listen_port
        return self._ports.get(port) if port is not None else None


def check_hello(listener: Listener, data: bytes) -> bool:
    """True once the first bytes are acceptable; False if more are needed; NotServed otherwise."""
    if not listener.tls:
        if starts_like_tls_record(data):
            raise NotServed(f"TLS on port {listener.port}, which speaks plain HTTP")
        return True
    if len(data) < 3:
        return False
    if not starts_like_tls_record(data):
        raise NotServed(f"plain text on port {listener.port}, which speaks TLS")
    try:
        hello = tls.parse_client_hello(data)
    except ValueError as exc:
        raise NotServed(f"malformed TLS ClientHello: {exc}") from exc
    if hello is None:
        return False
    if not hello.sni:
        raise NotServed(
            "TLS without a server name (SNI): a connection to a bare IP address has no "
            "name to judge; connect to an allowed host name"
        )
    if _is_address(hello.sni):
        raise NotServed(f"the TLS server name {hello.sni!r} is an IP address, not a host name")
    return True


def check_request(listener: Listener, flow: http.HTTPFlow) -> None:
    """Raise NotServed unless the request names a host on the port it arrived on."""
    req = flow.request
    if not req.host_header and not req.authority:
        raise NotServed("a request without Host names no destination")
    if _is_address(req.host):
        raise NotServed(f"the Host {req.host!r} is an IP address, not a host name")
    if req.port != listener.port:
        raise NotServed(
            f"the Host names port {req.port}, but the connection came in on {listener.port}"
        )
    # Which hosts a port is open for is the chain's port rule, as on the explicit path.


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


class TransparentEntry:
    """Refuses what a transparent listener cannot serve, before the chain sees it."""

    def __init__(self, holder: RuntimeHolder, audit: AuditWriter, address: str) -> None:
        self._holder = holder
        self._audit = audit
        self._address = address
        self._built: tuple[CageConfig, Listeners] | None = None
        self._window = 0
        self._written = 0
        self._suppressed = 0
        self._admitted: set[str] = set()  # ids of clients whose first bytes passed

    def client_disconnected(self, client: connection.Client) -> None:
        self._admitted.discard(client.id)

    @property
    def cage(self) -> str:
        return self._holder.current.cage

    @property
    def listeners(self) -> Listeners:
        config = self._holder.current.config
        if self._built is None or self._built[0] is not config:
            self._built = (config, Listeners(self._address, config))
        return self._built[1]

    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        context = nextlayer.context
        client = context.client
        if client.id in self._admitted:  # only the first decision, right after the listener
            return
        listener = self.listeners.of(client)
        if listener is None or listener.opaque_to is not None:
            return
        try:
            data = nextlayer.data_client()  # type: ignore[no-untyped-call]
            if check_hello(listener, data):
                self._admitted.add(client.id)
            else:
                nextlayer.layer = None  # wait for the whole ClientHello
        except NotServed as exc:
            nextlayer.layer = RefusedStream(context)
            self._refuse_connection(context.client, listener, str(exc))
        except Exception as exc:
            logger.exception("transparent listener check failed")
            nextlayer.layer = RefusedStream(context)
            self._refuse_connection(context.client, listener, f"internal error: {exc!r}")

    def http_connect(self, flow: http.HTTPFlow) -> None:
        if self.listeners.of(flow.client_conn) is not None:
            self._block(flow, "CONNECT on a transparent listener; use the explicit proxy port")

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        try:
            listener = self.listeners.of(flow.client_conn)
            if listener is not None:
                check_request(listener, flow)
        except NotServed as exc:
            self._block(flow, str(exc))
        except Exception as exc:
            logger.exception("transparent request check failed")
            self._block(flow, f"internal error: {type(exc).__name__}")

    def _block(self, flow: http.HTTPFlow, reason: str) -> None:
        flow.response = block_response(403, reason, INSPECTOR, flow.request.host)
        flow_state(flow).audited = True
        runtime = self._holder.current
        line = record(flow, runtime.cage, Verdict.BLOCK, inspector=INSPECTOR, reason=reason)
        try:
            self._audit.write(line)
        except OSError as exc:
            logger.error("cannot write the audit line for blocked %s: %s", flow.id, exc)

    def _refuse_connection(self, client: connection.Client, listener: Listener, why: str) -> None:
        now = int(time.monotonic())
        if now != self._window:
            self._window, self._written = now, 0
        if self._written >= LINES_PER_SECOND:
            self._suppressed += 1
            return
        self._written += 1
        extra: dict[str, object] = {"listener": f"{self._address}:{listener.port}"}
        if self._suppressed:
            extra["suppressed"] = self._suppressed  # refusals not written since the last line
            self._suppressed = 0
        line = AuditRecord(
            kind="connection",
            verdict=Verdict.BLOCK.value,
            cage=self._holder.current.cage,
            client=peer_of(client),
            host=self._address,  # what the client dialled; it named nothing else
            port=listener.port,
            inspector=INSPECTOR,
            reason=why,
            extra=extra,
        )
        try:
            self._audit.write(line)
        except OSError as exc:
            logger.error("cannot write the audit line of a refused connection: %s", exc)

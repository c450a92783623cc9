"""Port rules: 80 and 443 for every host, other ports only where `network.ports` says.

Both paths, explicit (`CONNECT host:8443`, `http://host:8080/`) and transparent, are
judged here, so a port opens the same way for both. `https` ports take TLS requests
(`https`, `wss`), `http` ports plain ones; an `opaque` port is a raw relay (its
transparent listener, or a CONNECT tunnel to its one host: proxy/opaque.py), never an
HTTP request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentcage.config.constants import WEB_PORTS, Protocol
from agentcage.policy.canonical_hosts import BadHost, HostSet, canonical_host
from agentcage.policy.interface import block
from agentcage.policy.types import Finding, Frame, Request

if TYPE_CHECKING:
    from agentcage.config.schema import CageConfig


NAME = "port"
_TLS_SCHEMES = frozenset({"https", "wss"})


class PortInspector:
    name = NAME

    def __init__(self, config: CageConfig) -> None:
        self._open: dict[int, tuple[Protocol, HostSet]] = {}
        for rule in config.network.ports:
            _, hosts = self._open.setdefault(rule.port, (rule.protocol, HostSet()))
            hosts.add(rule.host)

    def inspect_request(self, request: Request) -> Finding | None:
        reason = self.refusal(request.host, request.port, request.scheme)
        return block(NAME, reason, "port-not-open") if reason is not None else None

    def inspect_frame(self, frame: Frame) -> Finding | None:
        return None  # decided at the handshake; a frame cannot change the port

    def refusal(self, host: str, port: int, scheme: str) -> str | None:
        if port in WEB_PORTS:
            return None
        rule = self._open.get(port)
        if rule is None:
            return (
                f"port {port} is not open: only 80 and 443 are, unless network.ports lists "
                f"the host on {port}"
            )
        protocol, hosts = rule
        if protocol == "opaque":
            return f"port {port} is an opaque port; only raw connections to it are relayed"
        spoken = "https" if scheme in _TLS_SCHEMES else "http"
        if protocol != spoken:
            return f"port {port} is listed as {protocol}, but this request is {spoken}"
        try:
            listed = canonical_host(host) in hosts
        except BadHost as exc:
            return f"invalid host: {exc}"
        if not listed:
            return f"port {port} is not open for {host}; list it in network.ports to allow it"
        return None

"""The `network` section: egress address rules and the ports the proxy serves."""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import Field, field_validator

from agentcage.config.base import Model
from agentcage.config.constants import DENY_PORT, WEB_PORTS, Protocol
from agentcage.config.fields import HostEntry


class PortRule(Model):
    """One more port a host may be reached on: inspected like 80 and 443, or opaque."""

    host: HostEntry = Field(
        description="The host (and its subdomains), IP address or CIDR this port is open for."
    )
    port: int = Field(ge=1, le=65535, description="The port.")
    protocol: Protocol = Field(
        "https",
        description="What the port speaks: `https` (TLS) or `http` (plain text), both "
        "inspected; or `opaque`: bytes relayed to `host` UNINSPECTED (no secret scanning, "
        "injection or redaction), audited with bytes and duration only.",
    )

    def warnings(self) -> list[tuple[str, str]]:
        if self.protocol != "opaque":
            return []
        return [
            (
                "protocol",
                f"port {self.port} relays bytes to {self.host} uninspected: nothing on it is "
                "scanned for secrets, injected or redacted; only the host, port, byte counts "
                "and duration are enforced and audited",
            )
        ]

    @field_validator("port", mode="after")
    @classmethod
    def _not_a_web_port(cls, port: int) -> int:
        if port in WEB_PORTS:
            raise ValueError(f"port {port} is open to every allowed host already")
        if port == DENY_PORT:
            raise ValueError(f"port {port} is the proxy's deny listener (docs/transparent.md)")
        return port


class NetworkConfig(Model):
    """Where the proxy may connect after resolving a name, and which ports it serves."""

    transparent: bool = Field(
        True,
        description="Serve programs that ignore proxy settings: the DNS sidecar answers "
        "allowed names with the proxy's address and the proxy listens on 80 and 443 "
        "(docs/transparent.md).",
    )
    ports: list[PortRule] = Field(
        default_factory=list,
        description="Ports besides 80 and 443 that named hosts may be reached on, inspected "
        "as HTTP or HTTPS (docs/transparent.md).",
    )

    allow_cidrs: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = Field(
        default_factory=list,
        description="Special-purpose ranges the proxy may connect to (private, loopback, "
        "link-local, NAT64, ...). By default every IANA special-purpose range is refused, so an "
        "allowed name cannot be pointed at internal services; an IPv6 address that embeds IPv4 "
        "needs both itself and its IPv4 address covered (see docs/proxy.md).",
    )

    def listener_ports(self) -> tuple[int, ...]:
        """The proxy's transparent listeners: 80, 443 and each port listed; none when off."""
        if not self.transparent:
            return ()
        return tuple(sorted({*WEB_PORTS, *(rule.port for rule in self.ports)}))

    @field_validator("ports", mode="after")
    @classmethod
    def _one_protocol_per_port(cls, rules: list[PortRule]) -> list[PortRule]:
        # One listener per port: TLS, plain text or opaque, never two of them.
        spoken: dict[int, PortRule] = {}
        for rule in rules:
            other = spoken.setdefault(rule.port, rule)
            if other.protocol != rule.protocol:
                raise ValueError(
                    f"port {rule.port} is listed as both {other.protocol} and {rule.protocol}"
                )
            if rule is not other and rule.protocol == "opaque":
                # Nothing in an opaque stream names its destination: one host per port.
                raise ValueError(
                    f"opaque port {rule.port} is listed for {other.host} and {rule.host}; "
                    "an opaque port can lead to one host only"
                )
        return rules

    @field_validator("allow_cidrs", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        out = []
        for item in value:
            try:
                out.append(ipaddress.ip_network(str(item), strict=False))
            except ValueError as exc:
                raise ValueError(f"{item!r} is not a CIDR block (e.g. 10.0.0.0/8)") from exc
        return out

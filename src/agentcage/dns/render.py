"""The dnsmasq configuration for one cage, rendered from the validated config.

In `agentcage dns run` dnsmasq listens on loopback behind the sidecar's front, which
judges every query first and sends dnsmasq only the ones to forward; these rules are
a second line of defence that says the same. dnsmasq caches and forwards.

Two files, because dnsmasq re-reads only `--servers-file` on SIGHUP:

* the main file: fixed settings, the sinkhole answers and (blocklist mode) the
  blocked names. A change here needs a dnsmasq restart.
* the servers file: which names are forwarded to which upstream, and the zones
  blocked after tunnel detection. A change here needs only SIGHUP.

Allowlist mode:
    address=/#/198.51.100.1         every A query not covered below is sinkholed
    address=/#/2001:db8::1          ... and every AAAA query
    server=/example.com/10.0.0.1#53 (servers file) allowlisted names are forwarded
    server=/evil.example.com/#      (servers file) a blocked tunnel zone: "standard servers",
                                    of which there are none, so dnsmasq answers REFUSED
  There is no default upstream, so every other type (TXT, MX, NULL, SRV, ...) for an
  unlisted name is answered REFUSED by dnsmasq and never forwarded.

Blocklist mode (the mirror image):
    server=10.0.0.1#53              (servers file) the default upstream
    address=/bad.com/198.51.100.1, address=/bad.com/2001:db8::1, server=/bad.com/
                                    blocked names are sinkholed; their other types get an
                                    empty answer from dnsmasq itself (never forwarded)
    server=/evil.example.com/       (servers file) a blocked tunnel zone: NXDOMAIN

Learn mode (`domains.enforcement: learn`) renders like a blocklist of nothing: a
default upstream, no sinkhole, blocked tunnel zones answered NXDOMAIN. The front
alone then keeps back what must not leave (tunnel-shaped names, protected values,
spent budgets) and what must not come back (answers with internal addresses).

Every value is validated before it becomes a line: domains by `checked_domain`,
addresses by `ipaddress`, paths must be absolute and free of control characters.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agentcage.config.host import parse_server
from agentcage.dns.names import checked_domain, domain_entries
from agentcage.dns.plan import DnsView
from agentcage.errors import DnsError
from agentcage.policy.canonical_hosts import domain_matches

SINKHOLE_V4 = ipaddress.IPv4Address("198.51.100.1")  # RFC 5737 TEST-NET-2
SINKHOLE_V6 = ipaddress.IPv6Address("2001:db8::1")  # RFC 3849 documentation prefix
CACHE_SIZE = 1000
_UNSAFE_PATH = re.compile(r"[\x00-\x20\x7f#,]")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Upstream:
    address: IPAddress
    port: int

    def __str__(self) -> str:
        return f"{self.address}#{self.port}"


@dataclass(frozen=True, slots=True)
class Listen:
    address: IPAddress
    port: int

    @classmethod
    def parse(cls, text: str) -> Listen:
        """`host:port`, `[v6]:port` or a bare address (port 53)."""
        try:
            host, port = parse_server(text)
        except ValueError as exc:
            raise DnsError(
                f"--listen {text!r} is not an address",
                hint="give an IP address and port, e.g. 127.0.0.1:5353 or [::1]:5353",
            ) from exc
        return cls(ipaddress.ip_address(host), port)

    def __str__(self) -> str:
        if self.address.version == 6:
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"


@dataclass(frozen=True, slots=True)
class Rendered:
    main: str
    servers: str


def upstreams(config: DnsView) -> list[Upstream]:
    out: list[Upstream] = []
    for server in config.effective_dns_servers():
        host, port = parse_server(server)
        upstream = Upstream(ipaddress.ip_address(host), port)
        if upstream not in out:
            out.append(upstream)
    return out


def _line(key: str, value: str | None = None) -> str:
    if value is None:
        return key
    if any(ch in value for ch in "\n\r\x00"):
        raise DnsError(f"refusing to write a dnsmasq {key}= line containing a line break")
    return f"{key}={value}"


def _path(path: Path) -> str:
    text = str(path)
    if not path.is_absolute() or _UNSAFE_PATH.search(text):
        raise DnsError(f"cannot use {text!r} in a dnsmasq config: need an absolute plain path")
    return text


def render_main(config: DnsView, listen: Listen, servers_file: Path) -> str:
    lines = [
        f"# agentcage DNS sidecar for cage {config.name}: generated, do not edit",
        _line("no-resolv"),  # upstreams come only from the servers file
        _line("no-hosts"),
        _line("domain-needed"),  # never forward single-label names
        _line("bogus-priv"),  # never forward reverse lookups of private ranges
        _line("port", str(listen.port)),
        _line("pid-file", ""),
        _line("cache-size", str(CACHE_SIZE)),
        _line("log-facility", "-"),  # its messages on stderr; queries are the front's to log
    ]
    if not listen.address.is_unspecified:
        lines += [_line("listen-address", str(listen.address)), _line("bind-interfaces")]
    if config.domains.learning:
        pass  # every name is forwarded: the front refuses what must not leave
    elif config.domains.mode == "allowlist":
        lines += [_line("address", f"/#/{SINKHOLE_V4}"), _line("address", f"/#/{SINKHOLE_V6}")]
    else:
        for name in domain_entries(config.domains.entries):
            lines += [
                _line("address", f"/{name}/{SINKHOLE_V4}"),
                _line("address", f"/{name}/{SINKHOLE_V6}"),
                _line("server", f"/{name}/"),
            ]
    lines.append(_line("servers-file", _path(servers_file)))
    return "\n".join(lines) + "\n"


def render_servers(config: DnsView, blocked_zones: Iterable[str] = ()) -> str:
    servers = upstreams(config)
    names = domain_entries(config.domains.entries)
    # Learn mode forwards the names the list refuses as well: a default upstream.
    allowlist = config.domains.mode == "allowlist" and not config.domains.learning
    if not servers and (names or not allowlist):
        raise DnsError(
            "no upstream DNS server to forward to",
            hint="set dns_servers in the config (e.g. [1.1.1.1]); the host's resolv.conf "
            "lists only loopback resolvers a container cannot reach",
        )
    zones = sorted({checked_domain(zone) for zone in blocked_zones})
    lines = [f"# agentcage DNS sidecar for cage {config.name}: forwarding, generated"]
    if allowlist:
        for name in names:
            if any(domain_matches(name, zone) for zone in zones):
                continue  # blocked: never leave dnsmasq two answers for one domain
            lines += [_line("server", f"/{name}/{upstream}") for upstream in servers]
    else:
        lines += [_line("server", str(upstream)) for upstream in servers]
    target = "#" if allowlist else ""
    lines += [_line("server", f"/{zone}/{target}") for zone in zones]
    return "\n".join(lines) + "\n"


def render(
    config: DnsView,
    listen: Listen,
    servers_file: Path,
    *,
    blocked_zones: Iterable[str] = (),
) -> Rendered:
    try:
        return Rendered(
            main=render_main(config, listen, servers_file),
            servers=render_servers(config, blocked_zones),
        )
    except ValueError as exc:  # BadDomain and bad dns_servers
        raise DnsError(f"cannot render the DNS config: {exc}") from exc

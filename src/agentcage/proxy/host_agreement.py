"""Where a request really goes, and whether the client's names for it agree.

A request is decided on the host the proxy will connect to. Inside a CONNECT
tunnel that is the CONNECT target; for a plain proxy request it is the
absolute-form URL's host. The TLS SNI and the Host header (`:authority` in
HTTP/2) must name the same host and port, or the request is refused: otherwise
`CONNECT api.anthropic.com:443` followed by `Host: attacker.example` would be
judged on one name and delivered under another.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class HostMismatch(Exception):
    """The names a client gave for one request disagree."""


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int


@functools.lru_cache(maxsize=1024)
def fold_host(host: str) -> str:
    """Lower-case, no trailing dot, IPv6 without brackets, an IP literal in canonical form.

    Remembered per spelling (a pure function of it): each request folds its target,
    SNI and Host header, 4 us each, mostly `ipaddress` refusing a name.

    Only the differences every server ignores are folded, never the spellings that
    `agentcage.policy.canonical_hosts.canonical_host` resolves for the domain rules (IPv4 as
    `0x7f.1` or `2130706433`, Unicode names as IDNA): the server reads the Host header
    as the agent wrote it, so `Host: 0x7f.1` on a connection to 127.0.0.1, or
    `Host: bücher.example` beside the SNI `xn--bcher-kva.example`, names another
    virtual host there and must not agree.
    """
    name = host.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    name = name.rstrip(".")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def parse_authority(authority: str, default_port: int) -> Target:
    """`host`, `host:port`, `[v6]` or `[v6]:port` -> Target; ValueError when malformed."""
    text = authority.strip()
    if not text:
        raise ValueError("empty host")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"unclosed IPv6 literal in {authority!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"junk after IPv6 literal in {authority!r}")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, None  # a name, or a bare IPv6 literal
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"bad port in {authority!r}")
        port = int(port_text)
    else:
        port = default_port
    if not host:
        raise ValueError(f"empty host in {authority!r}")
    return Target(fold_host(host), port)


def agree(
    *,
    scheme: str,
    destination: Target,
    sni: str | None,
    host_header: str | Sequence[str] | None,
) -> Target:
    """Return the normalized destination, or raise HostMismatch naming the disagreement.

    `host_header` is every name the request gives itself: HTTP/2's `:authority`
    and each `Host` header (a second one, or one beside `:authority`, is how a
    request hides another name from one hop and shows it to the next). A missing
    SNI is accepted (clients send none for IP literals, and the Host check still
    binds the request); a missing Host header is accepted for the same reason
    (HTTP/1.0). Anything present must match.
    """
    claims = [host_header] if isinstance(host_header, str) else list(host_header or ())
    target = Target(fold_host(destination.host), destination.port)
    if sni:
        named = fold_host(sni)
        if named != target.host:
            raise HostMismatch(
                f"TLS SNI {named!r} does not match the connection target {target.host!r}"
            )
    for claim in claims:
        try:
            claimed = parse_authority(claim, DEFAULT_PORTS.get(scheme, target.port))
        except ValueError as exc:
            raise HostMismatch(f"malformed Host header: {exc}") from exc
        if claimed != target:
            raise HostMismatch(
                f"Host header {_show(claimed)} does not match the connection target {_show(target)}"
            )
    return target


def _show(target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    return f"'{host}:{target.port}'"

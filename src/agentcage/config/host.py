"""Facts read from the host that supply defaults (its DNS resolvers), and DNS server specs."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

RESOLV_CONF = Path("/etc/resolv.conf")


def host_resolvers(resolv_conf: Path = RESOLV_CONF) -> list[str]:
    """The host's non-loopback nameservers.

    Loopback resolvers (systemd-resolved's 127.0.0.53, a local dnsmasq) are not
    reachable from inside a container, so they are skipped; when nothing is left
    the caller must ask the user for `dns_servers`.
    """
    try:
        lines = resolv_conf.read_text().splitlines()
    except OSError:
        return []
    servers = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                address = ipaddress.ip_address(fields[1].split("%")[0])
            except ValueError:
                continue
            if not address.is_loopback and str(address) not in servers:
                servers.append(str(address))
    return servers


def parse_server(server: str) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]:port` or a bare IPv6 address -> (address, port)."""
    match = re.fullmatch(r"\[([0-9a-fA-F:.]+)\](?::(\d+))?", server)
    if match:
        host, port = match.group(1), match.group(2) or "53"
    elif server.count(":") == 1:
        host, port = server.split(":")
    else:
        host, port = server, "53"
    try:
        ipaddress.ip_address(host)
    except ValueError as exc:
        raise ValueError(f"DNS server {server!r} must be an IP address, optionally :port") from exc
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"DNS server {server!r}: {port!r} is not a port number")
    return host, int(port)

"""Facts read from the host that supply defaults: its DNS resolvers."""

from __future__ import annotations

import ipaddress
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

"""TCP listeners of a container, read from its /proc/net/tcp and /proc/net/tcp6.

`cage verify` uses them to show that a sidecar serves the agent's network on its
service port alone: metrics go to a unix socket, so nothing else may listen there.
Loopback listeners (dnsmasq behind the DNS sidecar) are the container's own.
"""

from __future__ import annotations

import ipaddress

LISTEN = "0A"  # the TCP_LISTEN state in /proc/net/tcp


def parse(table: str) -> list[tuple[str, int]]:
    """(address, port) of each listening socket in /proc/net/tcp{,6} text."""
    found = []
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[3] != LISTEN or ":" not in fields[1]:
            continue
        address, _, port = fields[1].partition(":")
        try:
            found.append((_address(address), int(port, 16)))
        except ValueError:
            continue
    return found


def _address(text: str) -> str:
    """The kernel prints each 32-bit word of the address in host (little-endian) order."""
    words = [bytes.fromhex(text[i : i + 8])[::-1] for i in range(0, len(text), 8)]
    packed = b"".join(words)
    if len(packed) == 4:
        return str(ipaddress.IPv4Address(packed))
    if len(packed) == 16:
        return str(ipaddress.IPv6Address(packed))
    raise ValueError(text)


def unexpected(listening: list[tuple[str, int]], *services: tuple[str, int]) -> list[str]:
    """Listeners other than `services` that are not on loopback: reachable from the agent."""
    extra = []
    for address, port in listening:
        ip = ipaddress.ip_address(address)
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        if (address, port) in services or ip.is_loopback or (mapped and mapped.is_loopback):
            continue
        extra.append(f"{address}:{port}" if ip.version == 4 else f"[{address}]:{port}")
    return extra

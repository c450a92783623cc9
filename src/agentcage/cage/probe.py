"""Readiness probes run inside the sidecar containers as their health checks.

    python -m agentcage.cage.probe tcp 10.213.0.3 8080   # the proxy accepts connections
    python -m agentcage.cage.probe dns 10.213.0.2 53     # the DNS sidecar answers a query

Exit 0 when ready, 1 otherwise. Standard library only: it runs on every health check.
"""

from __future__ import annotations

import os
import socket
import struct
import sys

TIMEOUT = 2.0


def tcp_ready(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT):
            return True
    except OSError:
        return False


def dns_query(name: str, qtype: int = 1) -> tuple[int, bytes]:
    """A recursive query for `name`; returns (id, wire bytes)."""
    ident = int.from_bytes(os.urandom(2), "big")
    header = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.split(".") if part)
    return ident, header + labels + b"\x00" + struct.pack(">HH", qtype, 1)


def dns_ready(host: str, port: int, name: str = "agentcage-probe.invalid") -> bool:
    """True when the server sends any well-formed answer (even NXDOMAIN or REFUSED)."""
    ident, query = dns_query(name)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
        try:
            sock.sendto(query, (host, port))
            reply = sock.recv(4096)
        except OSError:
            return False
    return len(reply) >= 12 and int.from_bytes(reply[:2], "big") == ident and reply[2] & 0x80 != 0


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ("tcp", "dns") or not argv[2].isdigit():
        print("usage: python -m agentcage.cage.probe tcp|dns HOST PORT", file=sys.stderr)
        return 2
    check = tcp_ready if argv[0] == "tcp" else dns_ready
    return 0 if check(argv[1], int(argv[2])) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

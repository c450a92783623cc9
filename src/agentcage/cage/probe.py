"""Probes run inside the sidecar containers: their liveness health checks.

    python -m agentcage.cage.probe tcp 10.213.0.3 8080   # the proxy accepts connections
    python -m agentcage.cage.probe dns 10.213.0.2 53     # the DNS sidecar answers a query

Exit 0 when ready, 1 otherwise. A refused connection or query is tried again every
20 ms until the 2 s timeout, so a server that starts listening meanwhile is seen at
once. Standard library only: it runs on every health check.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time

TIMEOUT = 2.0
RETRY = 0.02  # after a refusal: the server may be about to listen


def tcp_ready(host: str, port: int, timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=_left(deadline)):
                return True
        except ConnectionRefusedError:
            if not _pause(deadline):
                return False
        except OSError:
            return False


def dns_query(name: str, qtype: int = 1) -> tuple[int, bytes]:
    """A recursive query for `name`; returns (id, wire bytes)."""
    ident = int.from_bytes(os.urandom(2), "big")
    header = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.split(".") if part)
    return ident, header + labels + b"\x00" + struct.pack(">HH", qtype, 1)


def dns_ready(
    host: str, port: int, name: str = "agentcage-probe.invalid", timeout: float = TIMEOUT
) -> bool:
    """True when the server sends any well-formed answer (even NXDOMAIN or REFUSED).

    The socket is connected, so the ICMP "port unreachable" of a server that does not
    listen yet comes back as a refusal at once (an unconnected socket never sees it and
    waits out the whole timeout); the query is then sent again shortly after.
    """
    deadline = time.monotonic() + timeout
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((host, port))
        except OSError:
            return False
        while True:
            ident, query = dns_query(name)
            try:
                sock.settimeout(_left(deadline))
                sock.send(query)
                reply = sock.recv(4096)
            except ConnectionRefusedError:
                if not _pause(deadline):
                    return False
                continue
            except OSError:
                return False
            return (
                len(reply) >= 12
                and int.from_bytes(reply[:2], "big") == ident
                and reply[2] & 0x80 != 0
            )


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.001)


def _pause(deadline: float) -> bool:
    """Wait RETRY before another attempt; False once the deadline leaves no time for one."""
    if time.monotonic() + RETRY >= deadline:
        return False
    time.sleep(RETRY)
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ("tcp", "dns") or not argv[2].isdigit():
        print("usage: python -m agentcage.cage.probe tcp|dns HOST PORT", file=sys.stderr)
        return 2
    check = tcp_ready if argv[0] == "tcp" else dns_ready
    return 0 if check(argv[1], int(argv[2])) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

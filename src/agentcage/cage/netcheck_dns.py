"""Name resolution for `cage verify`'s network checks, asked of the DNS sidecar directly.

`cage verify` runs netcheck.py in the agent's network namespace but the proxy's mount
namespace (verify_network.py), whose /etc/resolv.conf is the proxy's, not the agent's.
The agent's resolver is the DNS sidecar (`--dns`), so `resolve_with` makes this process
ask it for every name, as the agent's libc does. Standard library only.
"""

from __future__ import annotations

import os
import socket
import struct


def resolve_with(server: str) -> None:
    """Resolve names in this process by asking `server`; IPv4 only, as the cage's networks."""
    system = socket.getaddrinfo

    def getaddrinfo(  # the signature of socket.getaddrinfo
        host: str | bytes | None,
        port: str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[str, int]]]:
        name = host.decode() if isinstance(host, bytes) else host
        if name is None or _is_address(name) or family not in (0, socket.AF_INET):
            return system(host, port, family, type, proto, flags)  # type: ignore[return-value]
        number = socket.getservbyname(port) if isinstance(port, str) else port or 0
        kinds = [socket.SocketKind(type)] if type else [socket.SOCK_STREAM, socket.SOCK_DGRAM]
        return [
            (socket.AF_INET, kind, proto, "", (address, number))
            for address in query_a(server, name)
            for kind in kinds
        ]

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]


def _is_address(name: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in name else socket.AF_INET, name)
    except OSError:
        return False
    return True


def query_a(server: str, name: str, timeout: float = 5.0) -> list[str]:
    """The IPv4 addresses `server` answers for `name`; socket.gaierror if none."""
    ident = int.from_bytes(os.urandom(2), "big")
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split("."))
    query = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + b"\0\0\1\0\1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((server, 53))
        sock.send(query)
        while True:  # an answer to another query (ours timed out earlier) is skipped
            reply = sock.recv(4096)
            if len(reply) >= 12 and int.from_bytes(reply[:2], "big") == ident:
                break
    return _a_records(reply, name)


def _a_records(reply: bytes, name: str) -> list[str]:
    flags, questions, answers = struct.unpack(">HHH", reply[2:8])
    if flags & 0x000F:
        raise socket.gaierror(socket.EAI_NONAME, f"{name}: DNS rcode {flags & 0x000F}")
    at = 12
    for _ in range(questions):
        at = _skip_name(reply, at) + 4
    found = []
    for _ in range(answers):
        at = _skip_name(reply, at)
        rtype, _class, _ttl, length = struct.unpack(">HHIH", reply[at : at + 10])
        at += 10
        if rtype == 1 and length == 4:
            found.append(socket.inet_ntoa(reply[at : at + 4]))
        at += length
    if not found:
        raise socket.gaierror(socket.EAI_NONAME, f"{name}: no A record")
    return found


def _skip_name(message: bytes, at: int) -> int:
    while True:
        length = message[at]
        if length == 0:
            return at + 1
        if length & 0xC0 == 0xC0:  # a pointer ends the name
            return at + 2
        at += 1 + length

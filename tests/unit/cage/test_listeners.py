"""Reading TCP listeners from /proc/net/tcp{,6}, for `cage verify`'s metrics check."""

from __future__ import annotations

import socket
from pathlib import Path

from agentcage.cage.listeners import parse, unexpected

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
TCP = HEADER + (
    "   0: 0302D50A:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 10000\n"
    "   1: 0100007F:8A2B 00000000:0000 0A 00000000:00000000 00:00000000 00000000 10000\n"
    "   2: 0302D50A:1F90 0402D50A:C350 01 00000000:00000000 00:00000000 00000000 10000\n"
)
TCP6 = HEADER + (
    "   0: 00000000000000000000000001000000:2328 00000000000000000000000000000000:0000 0A 0\n"
    "   1: 0000000000000000FFFF00000100007F:2329 00000000000000000000000000000000:0000 0A 0\n"
)


def test_listeners_are_read_in_the_kernels_byte_order() -> None:
    assert parse(TCP + TCP6) == [
        ("10.213.2.3", 8080),
        ("127.0.0.1", 35371),
        ("::1", 9000),
        ("::ffff:7f00:1", 9001),
    ]  # the established connection (state 01) is no listener


def test_only_the_service_port_and_loopback_are_expected() -> None:
    service = ("10.213.2.3", 8080)
    assert unexpected(parse(TCP + TCP6), service) == []
    metrics = HEADER + "   0: 00000000:24F8 00000000:0000 0A 0\n"
    v6 = (
        HEADER
        + "   0: 00000000000000000000000000000000:24F9 00000000000000000000000000000000:0 0A 0\n"
    )
    assert unexpected(parse(TCP + metrics + v6), service) == ["0.0.0.0:9464", "[::]:9465"]


def test_a_real_listener_of_this_process_is_found() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert ("127.0.0.1", port) in parse(Path("/proc/net/tcp").read_text())

"""Readiness probes against real loopback sockets."""

from __future__ import annotations

import socket
import threading

from agentcage.cage import probe


def test_tcp_ready_only_when_something_listens() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert probe.tcp_ready("127.0.0.1", port)
    assert not probe.tcp_ready("127.0.0.1", port)


def test_dns_ready_needs_a_matching_answer() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]

        def answer(flip_id: bool) -> None:
            data, peer = server.recvfrom(512)
            ident = data[:2] if not flip_id else bytes([data[0] ^ 1, data[1]])
            # QR bit set, REFUSED: any well-formed answer means the server is up.
            server.sendto(ident + b"\x81\x05" + data[4:], peer)

        thread = threading.Thread(target=answer, args=(False,))
        thread.start()
        assert probe.dns_ready("127.0.0.1", port)
        thread.join()
        thread = threading.Thread(target=answer, args=(True,))
        thread.start()
        assert not probe.dns_ready("127.0.0.1", port)
        thread.join()


def test_main_usage_and_exit_codes() -> None:
    assert probe.main(["bogus"]) == 2
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert probe.main(["tcp", "127.0.0.1", str(server.getsockname()[1])]) == 0


def test_query_is_well_formed() -> None:
    ident, wire = probe.dns_query("a.example")
    assert wire[:2] == ident.to_bytes(2, "big")
    assert b"\x01a\x07example\x00\x00\x01\x00\x01" in wire

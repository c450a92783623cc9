"""Readiness probes against real loopback sockets."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from agentcage.cage import probe


def test_tcp_ready_only_when_something_listens() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert probe.tcp_ready("127.0.0.1", port)
    assert not probe.tcp_ready("127.0.0.1", port, timeout=0.2)


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


def _answer_later(port: int, after: float, kind: int) -> threading.Thread:
    """A server that binds `port` only `after` seconds from now and serves once."""

    def serve() -> None:
        time.sleep(after)
        with contextlib.suppress(TimeoutError):
            _serve_once()

    def _serve_once() -> None:
        with socket.socket(socket.AF_INET, kind) as server:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", port))
            server.settimeout(5)  # a probe that never asks must not hang the test
            if kind == socket.SOCK_STREAM:
                server.listen()
                server.accept()[0].close()
                return
            data, peer = server.recvfrom(512)
            server.sendto(data[:2] + b"\x81\x05" + data[4:], peer)

    thread = threading.Thread(target=serve)
    thread.start()
    return thread


def _closed_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_dns_probe_sees_a_server_that_starts_listening_during_it() -> None:
    # An unconnected socket never learns its first query was refused, and waited out the
    # whole timeout: the DNS sidecar's first startup check always failed.
    port = _closed_port(socket.SOCK_DGRAM)
    thread = _answer_later(port, 0.3, socket.SOCK_DGRAM)
    assert probe.dns_ready("127.0.0.1", port)
    thread.join()


def test_tcp_probe_sees_a_server_that_starts_listening_during_it() -> None:
    port = _closed_port(socket.SOCK_STREAM)
    thread = _answer_later(port, 0.3, socket.SOCK_STREAM)
    assert probe.tcp_ready("127.0.0.1", port)
    thread.join()


def test_probes_give_up_at_their_timeout_when_nothing_listens() -> None:
    assert not probe.dns_ready("127.0.0.1", _closed_port(socket.SOCK_DGRAM), timeout=0.2)
    assert not probe.tcp_ready("127.0.0.1", _closed_port(socket.SOCK_STREAM), timeout=0.2)


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

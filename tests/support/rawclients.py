"""Clients that send what well-behaved libraries refuse to: raw HTTP/1.1 and HTTP/2 in a tunnel.

Each goes through the proxy's CONNECT, then TLS with the proxy's CA, then writes
exactly the bytes or header list it is given.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.events


@contextlib.contextmanager
def tunnel(
    proxy_port: int,
    target: str,
    ca_cert: Path,
    *,
    alpn: str = "http/1.1",
    sni: str | None = None,
    timeout: float = 5,
) -> Iterator[ssl.SSLSocket]:
    """A TLS socket inside `CONNECT target` (SNI: the target's host unless `sni`)."""
    context = ssl.create_default_context(cafile=str(ca_cert))
    context.set_alpn_protocols([alpn])
    with socket.create_connection(("127.0.0.1", proxy_port), timeout=timeout) as sock:
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        answer = sock.recv(4096)
        if b" 200 " not in answer:
            raise AssertionError(f"CONNECT {target} refused: {answer!r}")
        server_name = sni if sni is not None else target.rsplit(":", 1)[0]
        with context.wrap_socket(sock, server_hostname=server_name) as tls:
            yield tls


def read_all(sock: socket.socket, quiet: float = 1.0) -> bytes:
    """Everything until the peer closes, or goes quiet for `quiet` seconds after answering."""
    chunks: list[bytes] = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                sock.settimeout(quiet)
    except (TimeoutError, ConnectionResetError, ssl.SSLError):
        pass
    return b"".join(chunks)


def h1_in_tunnel(
    proxy_port: int, target: str, ca_cert: Path, request: bytes, *, sni: str | None = None
) -> bytes:
    """Send raw HTTP/1.1 bytes inside a TLS tunnel to `target`; the raw answer."""
    with tunnel(proxy_port, target, ca_cert, sni=sni) as tls:
        tls.sendall(request)
        return read_all(tls)


@dataclass
class H2Answer:
    """`status` is the response status, 0 if the stream was reset, -1 if the connection closed."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def h2_request(
    proxy_port: int,
    target: str,
    ca_cert: Path,
    headers: list[tuple[str, str]] | list[tuple[bytes, bytes]],
    body: bytes = b"",
    trailers: list[tuple[str, str]] | None = None,
) -> H2Answer:
    """One HTTP/2 request, headers sent as given (no validation, no normalization)."""
    with tunnel(proxy_port, target, ca_cert, alpn="h2") as tls:
        config = h2.config.H2Configuration(
            validate_outbound_headers=False, normalize_outbound_headers=False
        )
        conn = h2.connection.H2Connection(config)
        conn.initiate_connection()
        conn.send_headers(1, headers, end_stream=not (body or trailers))
        if body:
            conn.send_data(1, body, end_stream=not trailers)
        if trailers:
            conn.send_headers(1, trailers, end_stream=True)
        tls.sendall(conn.data_to_send())
        answer: H2Answer | None = None
        while True:
            try:
                data = tls.recv(65536)
            except (TimeoutError, ConnectionResetError, ssl.SSLError):
                data = b""
            if not data:
                return answer or H2Answer(-1)
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    fields = {
                        _text(k): _text(v)
                        for k, v in event.headers  # type: ignore[union-attr]
                    }
                    answer = H2Answer(int(fields[":status"]), fields)
                elif isinstance(event, h2.events.DataReceived) and answer is not None:
                    answer.body += event.data or b""
                    conn.acknowledge_received_data(len(event.data or b""), 1)
                elif isinstance(event, h2.events.StreamEnded) and answer is not None:
                    return answer
                elif isinstance(event, h2.events.StreamReset):
                    return answer or H2Answer(0)
            tls.sendall(conn.data_to_send())


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value

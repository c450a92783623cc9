"""One raw HTTP/2 exchange through the proxy's CONNECT tunnel, with the `h2` library.

Raw, so a test can send what a well-behaved client library refuses to (a missing
pseudo-header, a body longer than allowed) and see exactly what comes back.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.events


@dataclass
class H2Answer:
    """`status` 0: no response (the stream was reset or the connection ended)."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    reset: bool = False
    goaway: bool = False


def h2_exchange(
    proxy_port: int,
    ca_cert: Path,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes = b"",
    *,
    end_stream: bool = True,
) -> H2Answer:
    """Send one request on stream 1 to `target` ("host:port"); read until it ends.

    `end_stream=False` leaves the request open after `body`, as a client still
    sending would.
    """
    context = ssl.create_default_context(cafile=str(ca_cert))
    context.set_alpn_protocols(["h2"])
    answer = H2Answer()
    with socket.create_connection(("127.0.0.1", proxy_port), timeout=5) as sock:
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        if b" 200 " not in sock.recv(4096):
            raise AssertionError("CONNECT refused")
        with context.wrap_socket(sock, server_hostname=target.rsplit(":", 1)[0]) as tls:
            conn = h2.connection.H2Connection(
                h2.config.H2Configuration(validate_outbound_headers=False)
            )
            conn.initiate_connection()
            conn.send_headers(1, headers, end_stream=end_stream and not body)
            if body:
                conn.send_data(1, body, end_stream=end_stream)
            tls.sendall(conn.data_to_send())
            while data := tls.recv(65536):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        answer.headers = {k.decode(): v.decode() for k, v in event.headers}
                        answer.status = int(answer.headers[":status"])
                    elif isinstance(event, h2.events.DataReceived):
                        answer.body += event.data
                        conn.acknowledge_received_data(event.flow_controlled_length, 1)
                    elif isinstance(event, h2.events.StreamReset):
                        answer.reset = True
                        return answer
                    elif isinstance(event, h2.events.StreamEnded):
                        return answer
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        answer.goaway = True
                        return answer
                tls.sendall(conn.data_to_send())
    return answer

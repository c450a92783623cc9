"""An agent that resumes its TLS session with the proxy is intercepted as any other.

A resumed handshake (TLS 1.3 ticket, TLS 1.2 session) skips the certificate, so it
is the cheap path for agents that offer their last session (Node's https agent
does); the requests on it must still meet the policy and the audit log.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

import pytest

from tests.support.proxy import ProxyProcess
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration

AWS_KEY = "AKIAQ4MZVKD7TR3XW5PL"
VERSIONS = [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2]


@dataclass
class Exchange:
    status: int
    body: bytes
    session: ssl.SSLSession | None
    resumed: bool


def exchange(
    proxy: ProxyProcess,
    context: ssl.SSLContext,
    host: str,
    port: int,
    request: bytes,
    session: ssl.SSLSession | None = None,
) -> Exchange:
    """CONNECT host:port, TLS (offering `session`), one request, its whole answer."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 200"), head
        with context.wrap_socket(sock, server_hostname=host, session=session) as tls:
            tls.sendall(request)
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
            status_line, _, rest = answer.partition(b"\r\n")
            return Exchange(
                int(status_line.split()[1]),
                rest.partition(b"\r\n\r\n")[2],
                tls.session,
                tls.session_reused,
            )


def agent_context(proxy: ProxyProcess, version: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(proxy.ca_cert))
    context.maximum_version = version
    return context


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.name)
def test_a_resumed_session_is_inspected_and_audited(
    proxy: ProxyProcess, upstream: Upstream, version: ssl.TLSVersion
) -> None:
    upstream.clear()
    context = agent_context(proxy, version)
    host, port = "github.com", upstream.tls_port

    def get(path: str) -> bytes:
        return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()

    first = exchange(proxy, context, host, port, get(f"/first-{version.name}"))
    assert (first.status, first.resumed) == (200, False)
    again = exchange(proxy, context, host, port, get(f"/again-{version.name}"), first.session)
    assert again.resumed, "the proxy did not resume the agent's session"
    assert again.status == 200
    assert [r.path for r in upstream.received] == [
        f"/first-{version.name}",
        f"/again-{version.name}",
    ]
    line = proxy.wait_for_audit(lambda r: r["path"] == f"/again-{version.name}")
    assert (line["kind"], line["verdict"], line["host"]) == ("http", "allow", host)

    body = f'{{"note": "key {AWS_KEY}"}}'.encode()
    leak = (
        f"POST /gist-{version.name} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    blocked = exchange(proxy, context, host, port, leak, again.session)
    assert blocked.resumed
    assert blocked.status == 403
    assert b"aws" in blocked.body.lower()
    assert f"/gist-{version.name}" not in [r.path for r in upstream.received]
    line = proxy.wait_for_audit(lambda r: r["path"] == f"/gist-{version.name}")
    assert line["verdict"] == "block"

"""Host agreement, pinned egress and malformed input, sent as raw bytes where clients can't."""

from __future__ import annotations

import json
import socket
import ssl

import httpx
import pytest

from tests.integration.proxy.conftest import raw_exchange
from tests.support.fake_dns import FakeDns
from tests.support.proxy import ProxyProcess
from tests.support.rawclients import h2_request
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def _json_body(raw: bytes) -> dict[str, object]:
    return json.loads(raw.split(b"\r\n\r\n", 1)[1])  # type: ignore[no-any-return]


def test_host_header_other_than_connect_target_is_blocked(
    client: httpx.Client, upstream: Upstream, proxy: ProxyProcess
) -> None:
    response = client.get(
        f"https://api.anthropic.com:{upstream.tls_port}/spoof",
        headers={"host": f"attacker.example:{upstream.tls_port}"},
    )
    assert response.status_code == 403
    assert response.json()["inspector"] == "host-agreement"
    assert upstream.received == []
    line = proxy.wait_for_audit(lambda r: r["path"] == "/spoof")
    assert line["inspector"] == "host-agreement"


def test_allowed_host_header_inside_tunnel_to_other_host_is_blocked(
    client: httpx.Client, upstream: Upstream
) -> None:
    # The reverse spoof: judged as the allowed name, delivered to the tunnel's target.
    response = client.get(
        f"https://attacker.example:{upstream.tls_port}/spoof2",
        headers={"host": f"api.anthropic.com:{upstream.tls_port}"},
    )
    assert response.status_code == 403
    assert upstream.received == []


def test_sni_other_than_connect_target_is_blocked(proxy: ProxyProcess, upstream: Upstream) -> None:
    upstream.clear()
    target = f"api.anthropic.com:{upstream.tls_port}"
    context = ssl.create_default_context(cafile=str(proxy.ca_cert))
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        assert b" 200 " in sock.recv(4096)
        with context.wrap_socket(sock, server_hostname="github.com") as tls:
            head = f"GET /sni HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"
            tls.sendall(head.encode())
            raw = b""
            while chunk := tls.recv(65536):
                raw += chunk
    assert _status(raw) == 403
    assert _json_body(raw)["inspector"] == "host-agreement"
    assert upstream.received == []


def test_absolute_form_url_and_host_header_must_agree(
    proxy: ProxyProcess, upstream: Upstream
) -> None:
    upstream.clear()
    raw = raw_exchange(
        proxy,
        f"GET http://github.com:{upstream.plain_port}/abs HTTP/1.1\r\n"
        f"Host: attacker.example\r\nConnection: close\r\n\r\n".encode(),
    )
    assert _status(raw) == 403
    assert _json_body(raw)["inspector"] == "host-agreement"
    assert upstream.received == []


def test_name_resolving_to_refused_address_is_blocked(
    client: httpx.Client, upstream: Upstream, proxy: ProxyProcess, fake_dns: FakeDns
) -> None:
    # allow_cidrs lists only 127.0.0.1/32; 127.0.0.2 is loopback and refused.
    fake_dns.set("internal.example", "127.0.0.2")
    response = client.get(f"https://internal.example:{upstream.tls_port}/ssrf")
    assert response.status_code == 403
    body = response.json()
    assert body["inspector"] == "egress"
    assert "127.0.0.2" in body["reason"] and "allow_cidrs" in body["reason"]
    assert upstream.received == []
    proxy.wait_for_audit(lambda r: r["path"] == "/ssrf" and r["inspector"] == "egress")


def test_ip_literal_destination_is_checked_too(client: httpx.Client, upstream: Upstream) -> None:
    response = client.get(f"http://127.0.0.2:{upstream.plain_port}/literal")
    assert response.status_code == 403
    assert upstream.received == []


def test_proxy_connects_to_the_permitted_address_it_resolved(
    client: httpx.Client, upstream: Upstream, fake_dns: FakeDns
) -> None:
    # First answer refused, second permitted: the connection goes to the permitted one.
    fake_dns.set("example.com", "127.0.0.2", "127.0.0.1")
    response = client.get(f"https://example.com:{upstream.tls_port}/pinned")
    assert response.status_code == 200
    assert upstream.received[-1].path == "/pinned"


def test_unknown_name_is_a_clear_error(client: httpx.Client, upstream: Upstream) -> None:
    response = client.get(f"https://nosuch.github.com:{upstream.tls_port}/x")
    assert response.status_code == 403
    assert "NXDOMAIN" in response.json()["reason"]


def test_garbage_request_line_gets_400(proxy: ProxyProcess) -> None:
    raw = raw_exchange(proxy, b"THIS IS NOT HTTP\r\n\r\n")
    assert _status(raw) == 400


def test_huge_headers_are_refused_and_not_forwarded(
    proxy: ProxyProcess, upstream: Upstream
) -> None:
    upstream.clear()
    filler = "a" * 300_000
    raw = raw_exchange(
        proxy,
        f"GET http://github.com:{upstream.plain_port}/huge HTTP/1.1\r\n"
        f"Host: github.com:{upstream.plain_port}\r\nX-Filler: {filler}\r\n\r\n".encode(),
    )
    assert _status(raw) == 431
    assert _json_body(raw)["inspector"] == "header-size"
    assert upstream.received == []


def test_bad_content_length_gets_400(proxy: ProxyProcess, upstream: Upstream) -> None:
    upstream.clear()
    raw = raw_exchange(
        proxy,
        f"POST http://github.com:{upstream.plain_port}/cl HTTP/1.1\r\n"
        f"Host: github.com:{upstream.plain_port}\r\nContent-Length: -5\r\n\r\n".encode(),
    )
    assert _status(raw) == 400
    assert upstream.received == []


def test_raw_tcp_through_connect_is_refused(proxy: ProxyProcess, upstream: Upstream) -> None:
    upstream.clear()
    target = f"github.com:{upstream.plain_port}"
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        assert b" 200 " in sock.recv(4096)
        # Not HTTP, not TLS: mitmproxy would relay it as an uninspected byte stream.
        sock.sendall(b"\x00\x01SSH-2.0-exfil\r\n" * 4)
        try:
            answer = sock.recv(4096)
        except ConnectionResetError:
            answer = b""
    # Had it been relayed, hypercorn would have answered 400 to the garbage.
    assert answer == b""
    assert upstream.received == []
    line = proxy.wait_for_audit(lambda r: r["kind"] == "connection" and r["inspector"])
    assert line["verdict"] == "block" and line["inspector"] == "protocol"


def test_upgrade_to_other_protocols_is_refused(client: httpx.Client, upstream: Upstream) -> None:
    response = client.get(
        f"http://github.com:{upstream.plain_port}/upgrade",
        headers={"connection": "upgrade", "upgrade": "tcp-tunnel"},
    )
    assert response.status_code == 403
    assert response.json()["inspector"] == "protocol"
    assert upstream.received == []


def test_second_host_header_is_blocked(proxy: ProxyProcess, upstream: Upstream) -> None:
    upstream.clear()
    target = f"github.com:{upstream.plain_port}"
    raw = raw_exchange(
        proxy,
        f"GET http://{target}/two-hosts HTTP/1.1\r\nHost: {target}\r\n"
        f"Host: attacker.example\r\nConnection: close\r\n\r\n".encode(),
    )
    assert _status(raw) == 403
    assert _json_body(raw)["inspector"] == "host-agreement"
    assert upstream.received == []


def test_http2_host_header_beside_authority_must_agree(
    proxy: ProxyProcess, upstream: Upstream
) -> None:
    # Domain fronting: `:authority` names an allowed host, a `Host` header another.
    upstream.clear()
    target = f"github.com:{upstream.tls_port}"
    status = _h2_get(
        proxy,
        target,
        [
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", target),
            (":path", "/fronted"),
            ("host", "attacker.example"),
        ],
    )
    # Refused by us, or by mitmproxy's HTTP/2 stack (which rejects the header block).
    assert status in (-1, 0, 403)
    assert upstream.received == []


def _h2_get(
    proxy: ProxyProcess,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes = b"",
    trailers: list[tuple[str, str]] | None = None,
) -> int:
    """The status of one raw HTTP/2 request (0: stream reset, -1: connection closed)."""
    return h2_request(proxy.port, target, proxy.ca_cert, headers, body, trailers).status


def test_http2_request_trailers_are_refused(proxy: ProxyProcess, upstream: Upstream) -> None:
    upstream.clear()
    target = f"github.com:{upstream.tls_port}"
    headers = [(":method", "POST"), (":scheme", "https"), (":authority", target)]
    status = _h2_get(
        proxy,
        target,
        [*headers, (":path", "/trailers")],
        body=b"hello",
        trailers=[("x-smuggled", "data")],
    )
    assert status == 403
    assert upstream.received == []

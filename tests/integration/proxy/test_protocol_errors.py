"""Errors mitmproxy meets itself end in the cage's JSON block answer and an audit line.

Raw sockets, since the point is requests no client library would send. Each
exchange ends with `Connection: close` or a closed connection, so a missing answer
shows as an empty read within `raw_exchange`'s 5 s, not as a long wait.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.proxy.conftest import Port, raw_exchange
from tests.support.h2client import h2_exchange
from tests.support.proxy import ProxyProcess
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration
HEAD_CAP = 1024 * 1024  # protocolerrors.MAX_HEAD_BYTES


def _answer(raw: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Status, headers and JSON body of the first response in `raw`."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    length = int(headers.get("content-length", len(body)))
    return int(lines[0].split()[1]), headers, json.loads(body[:length])


def _blocked(raw: bytes, status: int, inspector: str) -> dict[str, Any]:
    assert raw, "no answer at all"
    got, headers, body = _answer(raw)
    assert got == status, raw
    assert headers["content-type"] == "application/json"
    assert headers["x-agentcage-blocked"] == inspector
    assert body["blocked"] is True and body["inspector"] == inspector
    return body


def test_http1_request_with_trailers_is_refused_with_a_line(
    proxy: ProxyProcess, upstream: Upstream
) -> None:
    upstream.clear()
    target = f"github.com:{upstream.plain_port}"
    raw = raw_exchange(
        proxy,
        f"POST http://{target}/trailers HTTP/1.1\r\nHost: {target}\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        "5\r\nhello\r\n0\r\nx-trailer: v\r\n\r\n".encode(),
    )
    body = _blocked(raw, 403, "protocol")
    assert body["reason"] == "requests with trailers are not allowed"
    assert upstream.received == []
    line = proxy.wait_for_audit(lambda r: r["path"] == "/trailers")
    assert (line["verdict"], line["inspector"]) == ("block", "protocol")


def test_body_over_the_limit_gets_the_json_413(proxy: ProxyProcess, upstream: Upstream) -> None:
    target = f"github.com:{upstream.plain_port}"
    raw = raw_exchange(
        proxy,
        f"POST http://{target}/too-big HTTP/1.1\r\nHost: {target}\r\n"
        "Content-Length: 10000000000\r\n\r\n".encode(),
    )
    body = _blocked(raw, 413, "body-size")
    assert body["host"] == "github.com"
    assert "max_request_body" in body["reason"]
    line = proxy.wait_for_audit(lambda r: r["path"] == "/too-big")
    assert (line["verdict"], line["inspector"]) == ("block", "body-size")


def test_body_over_the_limit_gets_the_json_413_over_http2(
    proxy: ProxyProcess, upstream: Upstream
) -> None:
    target = f"github.com:{upstream.tls_port}"
    answer = h2_exchange(
        proxy.port,
        proxy.ca_cert,
        target,
        [
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", target),
            (":path", "/too-big-h2"),
            ("content-length", "10000000000"),
        ],
        end_stream=False,
    )
    assert answer.status == 413
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-agentcage-blocked"] == "body-size"
    assert json.loads(answer.body)["inspector"] == "body-size"
    proxy.wait_for_audit(lambda r: r["path"] == "/too-big-h2" and r["inspector"] == "body-size")


@pytest.mark.parametrize(
    ("name", "request_text"),
    [
        (
            "bad-chunk",
            "POST {url}/bad-chunk HTTP/1.1\r\nHost: {host}\r\n"
            "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n",
        ),
        (
            "smuggling",
            "POST {url}/smuggling HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\n"
            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "bad-length",
            "POST {url}/bad-length HTTP/1.1\r\nHost: {host}\r\nContent-Length: -5\r\n\r\n",
        ),
        ("no-host", "GET /no-host HTTP/1.1\r\n\r\n"),
    ],
    ids=["bad-chunk", "smuggling", "bad-length", "no-host"],
)
def test_malformed_requests_get_a_json_400_and_a_block_line(
    name: str, request_text: str, proxy: ProxyProcess, upstream: Upstream
) -> None:
    upstream.clear()
    host = f"github.com:{upstream.plain_port}"
    raw = raw_exchange(proxy, request_text.format(url=f"http://{host}", host=host).encode())
    body = _blocked(raw, 400, "protocol")
    assert body["reason"].startswith("malformed request: ")
    assert upstream.received == []
    line = proxy.wait_for_audit(lambda r: r["path"] == f"/{name}")
    assert (line["verdict"], line["inspector"], line["reason"]) == (
        "block",
        "protocol",
        "malformed request",
    )
    assert line["extra"]["error"]


def test_unparsable_request_line_gets_a_json_400_and_a_line(proxy: ProxyProcess) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        client = f"127.0.0.1:{sock.getsockname()[1]}"
        raw = sock.recv(65536)
    body = _blocked(raw, 400, "protocol")
    assert body["host"] == ""
    line = proxy.wait_for_audit(lambda r: r["client"] == client and r["kind"] == "http")
    assert (line["verdict"], line["inspector"]) == ("block", "protocol")
    assert "Bad HTTP request line" in line["extra"]["error"]


def test_endless_request_head_gets_a_json_431(proxy: ProxyProcess, upstream: Upstream) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        client = f"127.0.0.1:{sock.getsockname()[1]}"
        sock.sendall(f"GET http://github.com:{upstream.plain_port}/endless HTTP/1.1\r\n".encode())
        filler = b"x-filler: " + b"a" * 8000 + b"\r\n"
        raw = b""
        try:
            for _ in range(2 * HEAD_CAP // len(filler)):  # never the blank line
                sock.sendall(filler)
        except (BrokenPipeError, ConnectionResetError):
            pass
        with contextlib.suppress(ConnectionResetError):
            raw = sock.recv(65536)
    body = _blocked(raw, 431, "header-size")
    assert str(HEAD_CAP) in body["reason"]
    line = proxy.wait_for_audit(lambda r: r["client"] == client and r["kind"] == "http")
    assert (line["verdict"], line["inspector"]) == ("block", "header-size")


@pytest.fixture(scope="module")
def more_ports(trailing_upstream: int) -> list[Port]:
    # Port 1: nothing listens there, for the 502.
    return [(1, "http"), (trailing_upstream, "http")]


def test_unreachable_upstream_gets_a_json_502(proxy: ProxyProcess) -> None:
    raw = raw_exchange(
        proxy,
        b"GET http://github.com:1/refused HTTP/1.1\r\nHost: github.com:1\r\n\r\n",
    )
    body = _blocked(raw, 502, "upstream")
    assert "Connect call failed" in body["reason"]
    # The decision was written before the attempt; the closing line says how it failed.
    line = proxy.wait_for_audit(lambda r: r["path"] == "/refused" and r["kind"] == "response")
    assert "Connect call failed" in line["extra"]["error"]


def test_invalid_http2_request_ends_the_connection_with_a_line(
    proxy: ProxyProcess, upstream: Upstream
) -> None:
    target = f"github.com:{upstream.tls_port}"
    answer = h2_exchange(
        proxy.port, proxy.ca_cert, target, [(":method", "GET"), (":authority", target)]
    )
    assert answer.goaway and answer.status == 0
    line = proxy.wait_for_audit(
        lambda r: r["kind"] == "http" and "HTTP/2" in r.get("extra", {}).get("error", "")
    )
    assert (line["verdict"], line["inspector"]) == ("block", "protocol")


@pytest.fixture(scope="module")
def trailing_upstream() -> Iterator[int]:
    """Answers one request with a chunked body followed by a trailer section."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-digest\r\n\r\n"
                b"5\r\nhello\r\n0\r\nx-digest: abc\r\n\r\n"
            )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.close()
    thread.join(timeout=5)


def test_response_trailers_are_dropped_not_fatal(
    proxy: ProxyProcess, trailing_upstream: int
) -> None:
    target = f"github.com:{trailing_upstream}"
    raw = raw_exchange(
        proxy,
        f"GET http://{target}/trailing HTTP/1.1\r\nHost: {target}\r\n"
        "Connection: close\r\n\r\n".encode(),
    )
    assert raw.startswith(b"HTTP/1.1 200")
    assert raw.endswith(b"5\r\nhello\r\n0\r\n\r\n")
    assert b"x-digest" not in raw.partition(b"\r\n\r\n")[2]

"""Body size and rate limits, on a proxy of their own with small limits."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.proxy.conftest import fresh_client, serving, start_proxy
from tests.support.fake_dns import FakeDns
from tests.support.proxy import ProxyProcess
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration
LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def limited(
    tmp_path_factory: pytest.TempPathFactory, fake_dns: FakeDns, upstream: Upstream
) -> Iterator[ProxyProcess]:
    extra = "max_request_body: 64KiB\nrate_limit: {requests_per_second: 0.01, burst: 5}\n"
    proc = start_proxy(
        tmp_path_factory.mktemp("limited"), fake_dns, upstream, extra, log_allowed=False
    )
    yield from serving(proc)


@pytest.fixture
def http(limited: ProxyProcess, upstream: Upstream) -> Iterator[httpx.Client]:
    yield from fresh_client(limited, upstream)


def test_body_within_limit_passes(http: httpx.Client, upstream: Upstream) -> None:
    body = b"a" * (LIMIT - 10)
    response = http.post(f"https://github.com:{upstream.tls_port}/reflect", content=body)
    assert response.status_code == 200
    assert upstream.received[-1].body == body


def test_declared_oversize_body_is_refused_before_it_is_sent(
    limited: ProxyProcess, upstream: Upstream
) -> None:
    upstream.clear()
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", limited.port), timeout=5) as sock:
        # Announce 10 GB, send only the head: the answer must not wait for the body.
        sock.sendall(
            f"POST http://github.com:{upstream.plain_port}/big HTTP/1.1\r\n"
            f"Host: github.com:{upstream.plain_port}\r\n"
            "Content-Length: 10000000000\r\n\r\n".encode()
        )
        head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 413")
    assert time.monotonic() - started < 5
    assert upstream.received == []
    limited.wait_for_audit(lambda r: r["path"] == "/big" and r["inspector"] == "body-size")


def test_chunked_oversize_body_is_cut_off_at_the_limit(
    limited: ProxyProcess, upstream: Upstream
) -> None:
    upstream.clear()
    chunk = b"b" * 16384
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", limited.port), timeout=5) as sock:
        sock.sendall(
            f"POST http://github.com:{upstream.plain_port}/chunked HTTP/1.1\r\n"
            f"Host: github.com:{upstream.plain_port}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        try:
            # Up to 16 MiB: far past the limit, far short of what a test should buffer.
            for _ in range(1024):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            answer = sock.recv(4096)
        except ConnectionResetError:
            answer = b""
    assert sent < 8 * 1024 * 1024, "the proxy kept reading long past the limit"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 413")
    assert upstream.received == []


def test_rate_limit_answers_429(
    http: httpx.Client, upstream: Upstream, limited: ProxyProcess
) -> None:
    responses = [http.get(f"https://example.com:{upstream.tls_port}/rl/{i}") for i in range(8)]
    assert [r.status_code for r in responses[:5]] == [200] * 5
    assert {r.status_code for r in responses[5:]} == {429}
    assert responses[7].headers["retry-after"] == "1"
    # The 0.3.x keys this config sets: the answer names the key to raise.
    assert "rate_limit.requests_per_second" in responses[7].json()["reason"]
    assert len(upstream.received) == 5
    line = limited.wait_for_audit(lambda r: r["path"] == "/rl/7")
    assert line["verdict"] == "block"
    assert line["rules"] == ["rate-limit:requests_per_second"]
    # On stderr (`agentcage cage logs NAME -s proxy`): the first refusal of its kind, with
    # the key to raise; the two after it only counted, for the next line of that kind.
    deadline = time.monotonic() + 5
    while not (told := [t for t in limited.stderr_lines if "/rl/" in t]):
        assert time.monotonic() < deadline, limited.stderr
        time.sleep(0.05)
    assert len(told) == 1, told
    assert "blocked GET example.com/rl/5 (rate-limit): " in told[0]
    assert "raise rate_limit.requests_per_second" in told[0]


def test_without_allowed_requests_only_blocks_and_connections_are_logged(
    limited: ProxyProcess,
) -> None:
    lines = limited.audit()
    assert {line["verdict"] for line in lines if line["kind"] == "http"} == {"block"}
    assert any(line["inspector"] == "body-size" for line in lines)
    assert any(line["kind"] == "connection" and line["verdict"] == "allow" for line in lines)

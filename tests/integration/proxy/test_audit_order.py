"""Audit before forward: no line, no request; a kill loses no line of a forwarded request."""

from __future__ import annotations

import asyncio
import resource
import signal
import ssl
import threading
import time
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.integration.proxy.conftest import start_proxy
from tests.support.fake_dns import FakeDns
from tests.support.proxy import ProxyProcess
from tests.support.upstream import Upstream

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _client(proxy: ProxyProcess) -> httpx.Client:
    verify = ssl.create_default_context(cafile=str(proxy.ca_cert))
    return httpx.Client(proxy=proxy.url, verify=verify, timeout=10)


def test_with_the_disk_full_nothing_is_forwarded(
    tmp_path: Path, fake_dns: FakeDns, upstream: Upstream
) -> None:
    # /dev/full fails every write with ENOSPC, as a full file system does.
    (tmp_path / "audit.jsonl").symlink_to("/dev/full")
    proxy = start_proxy(tmp_path, fake_dns, upstream, "rate_limit: false")
    try:
        upstream.clear()
        base = f"https://api.anthropic.com:{upstream.tls_port}"
        with _client(proxy) as http:
            got = http.get(f"{base}/full-get")
            posted = http.post(f"{base}/reflect/full-post", content=b"payload")
        for response in (got, posted):
            assert response.status_code == 503
            assert response.json()["inspector"] == "audit"
        with pytest.raises(InvalidStatus) as refused:
            asyncio.run(_open_websocket(proxy, f"wss://github.com:{upstream.tls_port}/ws-full"))
        assert refused.value.response.status_code == 503
        assert upstream.received == []
    finally:
        proxy.stop()


async def _open_websocket(proxy: ProxyProcess, url: str) -> None:
    context = ssl.create_default_context(cafile=str(proxy.ca_cert))
    async with connect(url, proxy=proxy.url, ssl=context, open_timeout=8):
        pass


def test_a_websocket_message_whose_line_cannot_be_written_is_not_relayed(
    tmp_path: Path, fake_dns: FakeDns, upstream: Upstream
) -> None:
    proxy = start_proxy(tmp_path, fake_dns, upstream, "rate_limit: false")
    closed: list[ConnectionClosed] = []
    try:
        upstream.clear()
        context = ssl.create_default_context(cafile=str(proxy.ca_cert))
        url = f"wss://github.com:{upstream.tls_port}/ws-fills"

        async def session() -> None:
            async with connect(url, proxy=proxy.url, ssl=context, open_timeout=8) as ws:
                await ws.send("first")
                assert await asyncio.wait_for(ws.recv(), 5) == "first"
                # The disk fills now: the audit file may not grow by another byte.
                size = proxy.audit_path.stat().st_size
                assert proxy.pid is not None
                resource.prlimit(proxy.pid, resource.RLIMIT_FSIZE, (size, size))
                await ws.send("second")
                try:
                    await asyncio.wait_for(ws.recv(), 5)
                except ConnectionClosed as exc:
                    closed.append(exc)

        asyncio.run(session())
        assert upstream.received[-1].ws_messages == ["first"]
        [exc] = closed
        assert exc.rcvd is not None and exc.rcvd.code == 1008
        assert "audit" in exc.rcvd.reason
    finally:
        proxy.stop()


def test_sigkill_loses_no_line_of_a_forwarded_request(
    tmp_path: Path, fake_dns: FakeDns, upstream: Upstream
) -> None:
    proxy = start_proxy(tmp_path, fake_dns, upstream, "rate_limit: false")
    upstream.clear()
    paths = [f"/sse-reflect/kill-{n}" for n in range(6)]

    def send(path: str) -> None:
        # The SSE route answers half its body, pauses, then the rest: in flight.
        try:
            with _client(proxy) as http:
                http.post(f"https://github.com:{upstream.tls_port}{path}", content=b"a" * 64)
        except httpx.HTTPError:
            pass  # the proxy dies under it

    threads = [threading.Thread(target=send, args=(path,), daemon=True) for path in paths]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while len(upstream.received) < len(paths) and time.monotonic() < deadline:
        time.sleep(0.01)
    proxy.signal(signal.SIGKILL)
    proxy.stop()
    for thread in threads:
        thread.join(10)
    arrived = {item.path for item in upstream.received}
    assert arrived == set(paths)
    decided = {line["path"] for line in proxy.audit() if line["kind"] == "http"}
    assert arrived <= decided

"""WebSocket through the proxy: handshake checked, every message inspected both ways.

The asyncio client is used: under heavy load websockets' sync client occasionally
stalled opening a connection through mitmproxy (through bare mitmdump too) and then
waited forever for its reader thread; the asyncio client showed no stall in 2,000
openings under the same load, and its timeouts cancel cleanly. A stalled opening
would be retried.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.integration.proxy.conftest import PLACEHOLDER, REAL_KEY
from tests.support.proxy import ProxyProcess
from tests.support.upstream import Upstream

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
AWS_KEY = "AKIAQ4MZVKD7TR3XW5PL"
ATTEMPTS = 3


def _session(
    proxy: ProxyProcess, url: str, body: Callable[[ClientConnection], Awaitable[None]]
) -> None:
    context = ssl.create_default_context(cafile=str(proxy.ca_cert))

    async def run() -> None:
        for attempt in range(ATTEMPTS):
            try:
                ws = await connect(
                    url,
                    proxy=proxy.url,
                    ssl=context if url.startswith("wss") else None,
                    open_timeout=8,
                    close_timeout=5,
                )
            except TimeoutError:
                if attempt == ATTEMPTS - 1:
                    raise
                continue
            async with ws:
                await body(ws)
            return

    asyncio.run(run())


def test_messages_are_injected_and_scrubbed(proxy: ProxyProcess, upstream: Upstream) -> None:
    upstream.clear()
    got: list[str | bytes] = []

    async def body(ws: ClientConnection) -> None:
        await ws.send(f"auth {PLACEHOLDER}")
        got.append(await asyncio.wait_for(ws.recv(), 5))
        await ws.send(b"\x00binary\xff")
        got.append(await asyncio.wait_for(ws.recv(), 5))

    _session(proxy, f"wss://api.anthropic.com:{upstream.tls_port}/ws", body)
    # The server got the real value, the agent only ever sees the placeholder.
    assert upstream.received[-1].ws_messages[0] == f"auth {REAL_KEY}"
    assert got == [f"auth {PLACEHOLDER}", b"\x00binary\xff"]
    assert REAL_KEY not in proxy.audit_text()


def test_plain_ws_works(proxy: ProxyProcess, upstream: Upstream) -> None:
    got: list[str | bytes] = []

    async def body(ws: ClientConnection) -> None:
        await ws.send("hello")
        got.append(await asyncio.wait_for(ws.recv(), 5))

    _session(proxy, f"ws://github.com:{upstream.plain_port}/ws", body)
    assert got == ["hello"]


def _expect_close(closed: list[ConnectionClosed]) -> Callable[[ClientConnection], Awaitable[None]]:
    async def until_closed(ws: ClientConnection) -> None:
        try:
            await asyncio.wait_for(ws.recv(), 5)
        except ConnectionClosed as exc:
            closed.append(exc)

    return until_closed


def test_blocked_message_closes_with_1008(proxy: ProxyProcess, upstream: Upstream) -> None:
    upstream.clear()
    closed: list[ConnectionClosed] = []
    echoed: list[str | bytes] = []

    async def body(ws: ClientConnection) -> None:
        await ws.send("fine")
        echoed.append(await asyncio.wait_for(ws.recv(), 5))
        await ws.send(f"here is {AWS_KEY}")
        await _expect_close(closed)(ws)

    _session(proxy, f"wss://github.com:{upstream.tls_port}/ws-leak", body)
    assert echoed == ["fine"]
    [exc] = closed
    assert exc.rcvd is not None
    assert exc.rcvd.code == 1008
    assert "blocked by agentcage" in exc.rcvd.reason
    assert upstream.received[-1].ws_messages == ["fine"]
    line = proxy.wait_for_audit(
        lambda r: r["kind"] == "websocket" and r["verdict"] == "block" and r["path"] == "/ws-leak"
    )
    assert line["extra"]["direction"] == "to_server"
    assert AWS_KEY not in proxy.audit_text()


def test_placeholder_over_websocket_to_wrong_host_closes(
    proxy: ProxyProcess, upstream: Upstream
) -> None:
    upstream.clear()
    closed: list[ConnectionClosed] = []

    async def body(ws: ClientConnection) -> None:
        await ws.send(f"token {PLACEHOLDER}")
        await _expect_close(closed)(ws)

    _session(proxy, f"wss://github.com:{upstream.tls_port}/ws-wrong", body)
    assert closed and closed[0].rcvd is not None and closed[0].rcvd.code == 1008
    assert upstream.received[-1].ws_messages == []


def test_handshake_to_blocked_host_is_refused(proxy: ProxyProcess, upstream: Upstream) -> None:
    upstream.clear()

    async def body(ws: ClientConnection) -> None:
        raise AssertionError("the handshake should have been refused")

    with pytest.raises(InvalidStatus) as refused:
        _session(proxy, f"wss://attacker.example:{upstream.tls_port}/ws", body)
    assert refused.value.response.status_code == 403
    assert upstream.received == []

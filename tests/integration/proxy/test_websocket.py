"""WebSocket through the proxy: handshake checked, every message inspected both ways."""

from __future__ import annotations

import ssl

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.integration.proxy.conftest import PLACEHOLDER, REAL_KEY
from tests.support.proxy import ProxyProcess
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration
AWS_KEY = "AKIAQ4MZVKD7TR3XW5PL"


def _connect(proxy: ProxyProcess, url: str) -> ClientConnection:
    context = ssl.create_default_context(cafile=str(proxy.ca_cert))
    return connect(
        url,
        proxy=proxy.url,
        ssl=context if url.startswith("wss") else None,
        open_timeout=10,
        close_timeout=5,
    )


def test_messages_are_injected_and_scrubbed(proxy: ProxyProcess, upstream: Upstream) -> None:
    upstream.clear()
    with _connect(proxy, f"wss://api.anthropic.com:{upstream.tls_port}/ws") as ws:
        ws.send(f"auth {PLACEHOLDER}")
        echoed = ws.recv(timeout=5)
        ws.send(b"\x00binary\xff")
        echoed_bytes = ws.recv(timeout=5)
    # The server got the real value, the agent only ever sees the placeholder.
    assert upstream.received[-1].ws_messages[0] == f"auth {REAL_KEY}"
    assert echoed == f"auth {PLACEHOLDER}"
    assert echoed_bytes == b"\x00binary\xff"
    assert REAL_KEY not in proxy.audit_text()


def test_plain_ws_works(proxy: ProxyProcess, upstream: Upstream) -> None:
    with _connect(proxy, f"ws://github.com:{upstream.plain_port}/ws") as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"


def test_blocked_message_closes_with_1008(proxy: ProxyProcess, upstream: Upstream) -> None:
    upstream.clear()
    with _connect(proxy, f"wss://github.com:{upstream.tls_port}/ws-leak") as ws:
        ws.send("fine")
        assert ws.recv(timeout=5) == "fine"
        ws.send(f"here is {AWS_KEY}")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert "blocked by agentcage" in closed.value.rcvd.reason
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
    with _connect(proxy, f"wss://github.com:{upstream.tls_port}/ws-wrong") as ws:
        ws.send(f"token {PLACEHOLDER}")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert upstream.received[-1].ws_messages == []


def test_handshake_to_blocked_host_is_refused(proxy: ProxyProcess, upstream: Upstream) -> None:
    upstream.clear()
    with pytest.raises(Exception) as refused:
        _connect(proxy, f"wss://attacker.example:{upstream.tls_port}/ws")
    assert "403" in str(refused.value)
    assert upstream.received == []

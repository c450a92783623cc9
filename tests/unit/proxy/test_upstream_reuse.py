"""Which requests the upstream pool may carry, and how it reads a response."""

from __future__ import annotations

import asyncio

import pytest
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import tflow, tutils

from agentcage.policy.types import Decision, Verdict
from agentcage.proxy.flow_state import GateNote, flow_state
from agentcage.proxy.pooled_responses import NotReusable, ResponseReader, read_response
from agentcage.proxy.upstream_reuse import IdleConnections, ReuseKey, reusable


def allowed(**request: object) -> tflow.HTTPFlow:
    flow = tflow.tflow()
    flow.client_conn.proxy_mode = ProxyMode.parse("regular")
    fields: dict[str, object] = {"scheme": b"https", "port": 443, "content": b""}
    flow.request = tutils.treq(**{**fields, **request})  # type: ignore[arg-type]
    flow.request.headers["content-length"] = str(len(flow.request.raw_content or b""))
    flow_state(flow).gate = GateNote(Decision(Verdict.ALLOW), "/")
    return flow


def test_an_allowed_get_is_reusable() -> None:
    assert reusable(allowed())


@pytest.mark.parametrize(
    "change",
    [
        {"method": b"POST"},
        {"content": b"body"},
        {"scheme": b"http"},
        {"http_version": b"HTTP/2.0"},
    ],
)
def test_what_cannot_be_sent_again_is_not_reusable(change: dict[str, object]) -> None:
    assert not reusable(allowed(**change))


@pytest.mark.parametrize(
    "header",
    [
        ("connection", "close"),
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("content-length", "5"),
        ("content-length", " 0"),
    ],
)
def test_close_upgrade_and_a_bodiless_length_are_not_reusable(header: tuple[str, str]) -> None:
    flow = allowed()
    flow.request.headers[header[0]] = header[1]
    assert not reusable(flow)


def test_undecided_blocked_or_transparent_flows_are_not_reusable() -> None:
    undecided = allowed()
    flow_state(undecided).gate = None
    blocked = allowed()
    blocked.response = tutils.tresp()
    transparent = allowed()
    transparent.client_conn.proxy_mode = ProxyMode.parse("transparent")
    assert not any(reusable(f) for f in (undecided, blocked, transparent))


def read(raw: bytes, method: bytes = b"GET") -> object:
    async def go() -> object:
        reader = ResponseReader()
        reader.feed(raw, eof=True)
        return await read_response(reader, tutils.treq(method=method, content=b""), 1 << 20)

    return asyncio.run(go())


def test_a_response_with_a_length_is_read_whole() -> None:
    response = read(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok")
    assert getattr(response, "raw_content") == b"ok"  # noqa: B009
    assert getattr(response, "reason") == "OK"  # noqa: B009


def test_a_compressed_chunked_response_is_read_whole() -> None:
    raw = b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n"
    response = read(raw + b"2\r\nab\r\n1\r\nc\r\n0\r\n\r\n")
    assert getattr(response, "raw_content") == b"abc"  # noqa: B009


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",  # streamed by mitmproxy
        b"HTTP/1.1 200 OK\r\ncontent-length: 99999999\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\n\r\n",  # ends with the connection
        b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n",
    ],
)
def test_what_mitmproxy_would_stream_or_cannot_frame_is_left_to_it(head: bytes) -> None:
    with pytest.raises(NotReusable):
        read(head + b"ok")


def test_a_connection_closed_before_an_answer_is_an_incomplete_read() -> None:
    with pytest.raises(asyncio.IncompleteReadError):
        read(b"")


def test_idle_connections_are_kept_per_key() -> None:
    class Conn:
        closed = False

        def usable(self, now: float) -> bool:
            return not self.closed

        def close(self) -> None:
            self.closed = True

    def key(host: str) -> ReuseKey:
        return ReuseKey(host, 443, host, "127.0.0.1", "ca.pem", None, "TLS1_2", "UNBOUNDED", 0)

    pool = IdleConnections()
    first = Conn()
    pool.give_back(key("a.example"), first)  # type: ignore[arg-type]
    assert pool.take(key("b.example")) is None
    assert pool.take(key("a.example")) is first
    assert pool.take(key("a.example")) is None

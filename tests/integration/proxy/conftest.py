"""A module-scoped `agentcage proxy run` in front of the loopback fake internet."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.fake_dns import FakeDns
from tests.support.plugin import fake_ca, fake_dns, upstream  # noqa: F401
from tests.support.proxy import ProxyProcess
from tests.support.upstream import Upstream

HERE = Path(__file__).parent
REAL_KEY = "sk-ant-api03-REALsecretVALUE0123456789abcdefXYZ"
PLACEHOLDER = "{{ANTHROPIC_API_KEY}}"

pytestmark = pytest.mark.integration


def write_config(path: Path, dns: FakeDns, extra: str = "", *, log_allowed: bool = True) -> Path:
    path.write_text(
        f"""
name: itest
container:
  image: docker.io/library/python:3.12-slim
secret_injection:
  - env: ANTHROPIC_API_KEY
    inject_to: [anthropic.com]
domains:
  allow: [anthropic.com, github.com, internal.example, example.com]
dns_servers: ["{dns.address}"]
network:
  allow_cidrs: [127.0.0.1/32]
inspectors:
  - name: tripwire
    path: {HERE / "tripwire.py"}
logging:
  allowed_requests: {"true" if log_allowed else "false"}
  proxy_connections: true
{extra}
"""
    )
    return path


def start_proxy(
    tmp: Path,
    dns: FakeDns,
    up: Upstream,
    extra: str = "",
    env: dict[str, str] | None = None,
    *,
    log_allowed: bool = True,
) -> ProxyProcess:
    config = write_config(tmp / "config.yaml", dns, extra, log_allowed=log_allowed)
    return ProxyProcess(
        config, tmp, upstream_ca=up.ca_pem, env={"ANTHROPIC_API_KEY": REAL_KEY, **(env or {})}
    ).start()


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory,
    fake_dns: FakeDns,  # noqa: F811
    upstream: Upstream,  # noqa: F811
) -> Iterator[ProxyProcess]:
    proc = start_proxy(tmp_path_factory.mktemp("proxy"), fake_dns, upstream, "rate_limit: false")
    yield proc
    assert proc.stop() == 0, proc.stderr


@pytest.fixture
def client(proxy: ProxyProcess, upstream: Upstream) -> Iterator[httpx.Client]:  # noqa: F811
    upstream.clear()
    verify = ssl.create_default_context(cafile=str(proxy.ca_cert))
    with httpx.Client(proxy=proxy.url, verify=verify, timeout=10) as http:
        yield http


def h2_context(ca_cert: Path) -> ssl.SSLContext:
    """A client context offering only h2: httpx offers http/1.1 first through a proxy,
    and mitmproxy honours the client's preference."""

    class H2Only(ssl.SSLContext):
        def set_alpn_protocols(self, protocols: list[str]) -> None:  # type: ignore[override]
            super().set_alpn_protocols(["h2"])

    context = H2Only(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(ca_cert))
    return context


def raw_exchange(proxy: ProxyProcess, data: bytes, timeout: float = 5) -> bytes:
    """Send bytes to the proxy, read until it closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and len(chunks) > 0:
                    sock.settimeout(0.5)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)

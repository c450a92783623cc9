"""A module-scoped `agentcage proxy run` in front of the loopback fake internet."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal, Protocol

import httpx
import pytest

from tests.support.fake_dns import FakeDns
from tests.support.plugin import fake_ca, fake_dns, upstream  # noqa: F401
from tests.support.proxy import ProxyProcess
from tests.support.upstream import Received, Upstream

HERE = Path(__file__).parent
REAL_KEY = "sk-ant-api03-REALsecretVALUE0123456789abcdefXYZ"
PLACEHOLDER = "{{ANTHROPIC_API_KEY}}"

pytestmark = pytest.mark.integration


# The shared proxy injects everywhere a rule can, so the tests of injection and
# scrubbing reach every place; test_echoes.py runs its own with other places.
INJECT_EVERYWHERE = """
  - env: ANTHROPIC_API_KEY
    inject_to: [anthropic.com]
    places: [headers, query, body, websocket]
"""


DOMAINS = "{allow: [anthropic.com, github.com, internal.example, example.com]}"


# Every name the tests send to a loopback server's free ports (the allowlist still
# decides whether one may go there at all), and the loopback addresses.
SERVED_HOSTS = ("anthropic.com", "github.com", "example.com", "example", "127.0.0.0/8")


class Served(Protocol):
    """A loopback server with a TLS and a plain-text port (Upstream, RawUpstream)."""

    @property
    def tls_port(self) -> int: ...

    @property
    def plain_port(self) -> int: ...


Port = tuple[int, Literal["http", "https"]]


def ports_of(*servers: Served) -> list[Port]:
    return [p for s in servers for p in ((s.tls_port, "https"), (s.plain_port, "http"))]


def port_rules(ports: Sequence[Port]) -> str:
    """`network.ports` entries opening test servers' free ports to SERVED_HOSTS.

    Only 80 and 443 are open by default, and a test server cannot take those.
    """
    lines = [
        f"    - {{host: '{host}', port: {port}, protocol: {protocol}}}"
        for port, protocol in ports
        for host in SERVED_HOSTS
    ]
    return "\n".join(["  ports:", *lines]) if lines else ""


def write_config(
    path: Path,
    dns: FakeDns,
    extra: str = "",
    *,
    log_allowed: bool = True,
    injection: str = INJECT_EVERYWHERE,
    domains: str = DOMAINS,
    logging: str = "",
    served: Sequence[Port] = (),
) -> Path:
    """The shared test cage; `logging` adds keys (YAML, two-space indent) to its section;
    `served` are the test servers' ports it may reach (`ports_of`)."""
    path.write_text(
        f"""
name: itest
container:
  image: docker.io/library/python:3.12-slim
secret_injection:{injection}
domains: {domains}
dns_servers: ["{dns.address}"]
network:
  allow_cidrs: [127.0.0.1/32]
{port_rules(served)}
inspectors:
  - name: tripwire
    path: {HERE / "tripwire.py"}
logging:
  allowed_requests: {"true" if log_allowed else "false"}
  proxy_connections: true
{logging}
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
    injection: str = INJECT_EVERYWHERE,
    domains: str = DOMAINS,
    logging: str = "",
    more_ports: Sequence[Port] = (),
) -> ProxyProcess:
    config = write_config(
        tmp / "config.yaml",
        dns,
        extra,
        log_allowed=log_allowed,
        injection=injection,
        domains=domains,
        logging=logging,
        served=[*ports_of(up), *more_ports],
    )
    return ProxyProcess(
        config, tmp, upstream_ca=up.ca_pem, env={"ANTHROPIC_API_KEY": REAL_KEY, **(env or {})}
    ).start()


def rotating_proxy(
    tmp: Path, dns: FakeDns, up: Upstream, max_bytes: int, keep: int = 100
) -> ProxyProcess:
    """The test cage without rate limits, its audit log rotated every `max_bytes`."""
    rotation = f"  audit_max_bytes: {max_bytes}\n  audit_keep: {keep}"
    return start_proxy(tmp, dns, up, "rate_limit: false", logging=rotation)


@pytest.fixture(scope="module")
def more_ports() -> list[Port]:
    """Ports of a module's own test servers that the shared proxy opens; override it."""
    return []


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory,
    fake_dns: FakeDns,  # noqa: F811
    upstream: Upstream,  # noqa: F811
    more_ports: list[Port],
) -> Iterator[ProxyProcess]:
    tmp = tmp_path_factory.mktemp("proxy")
    yield from serving(
        start_proxy(tmp, fake_dns, upstream, "rate_limit: false", more_ports=more_ports)
    )


@pytest.fixture
def client(proxy: ProxyProcess, upstream: Upstream) -> Iterator[httpx.Client]:  # noqa: F811
    yield from fresh_client(proxy, upstream)


def serving(proc: ProxyProcess) -> Iterator[ProxyProcess]:
    """A module fixture's body: the proxy, then a clean stop once the module is done."""
    yield proc
    assert proc.stop() == 0, proc.stderr


def fresh_client(proc: ProxyProcess, server: Upstream) -> Iterator[httpx.Client]:
    """A test fixture's body: the upstream's memory cleared, a client through `proc`."""
    server.clear()
    with agent_client(proc) as http:
        yield http


def agent_client(proc: ProxyProcess) -> httpx.Client:
    """An HTTP client whose requests go through `proc`, trusting its CA."""
    verify = ssl.create_default_context(cafile=str(proc.ca_cert))
    return httpx.Client(proxy=proc.url, verify=verify, timeout=10)


def send_placeholder_everywhere(
    http: httpx.Client, server: Upstream
) -> tuple[httpx.Response, Received]:
    """A request to an injection host with the placeholder in path, query, header and body."""
    response = http.post(
        f"https://api.anthropic.com:{server.tls_port}/reflect/{PLACEHOLDER}?key={PLACEHOLDER}",
        headers={"x-api-key": PLACEHOLDER},
        content=f'{{"key": "{PLACEHOLDER}"}}'.encode(),
    )
    assert response.status_code == 200
    return response, server.received[-1]


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

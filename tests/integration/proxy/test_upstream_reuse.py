"""Upstream connections kept across the agent's connections (`proxy/upstream_reuse.py`).

Every request here comes on a new client connection (a CONNECT tunnel and a TLS
handshake of its own), as Debian's npm 9 sends them; the upstream's side shows
which TCP connections carried them.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import httpx
import pytest
import trustme

from tests.integration.proxy.conftest import PLACEHOLDER, REAL_KEY, Port, agent_client, ports_of
from tests.support.dns_sidecar import wait_for
from tests.support.proxy import ProxyProcess
from tests.support.rawupstream import RawUpstream
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def closing(fake_ca: trustme.CA) -> Iterator[RawUpstream]:
    """Trusted, but drops a connection idle for 0.3 s."""
    with RawUpstream(fake_ca, ["github.com"], idle_close=0.3) as server:
        yield server


@pytest.fixture(scope="module")
def untrusted() -> Iterator[RawUpstream]:
    """A certificate from a CA the proxy does not trust."""
    with RawUpstream(trustme.CA(), ["example.com"]) as server:
        yield server


@pytest.fixture(scope="module")
def more_ports(closing: RawUpstream, untrusted: RawUpstream) -> list[Port]:
    return ports_of(closing, untrusted)


def store_real_key(proxy: ProxyProcess, upstream: Upstream, name: str) -> str:
    """The URL of a stored body holding the real key: the proxy injected it on the way out."""
    url = f"https://api.anthropic.com:{upstream.tls_port}/store/{name}"
    upstream.clear()
    with agent_client(proxy) as http:
        assert http.put(url, content=f"key={PLACEHOLDER}".encode()).status_code == 201
    assert upstream.stored[name].body == f"key={REAL_KEY}".encode()
    return url


def fresh_get(proxy: ProxyProcess, url: str) -> httpx.Response:
    with agent_client(proxy) as http:
        return http.get(url)


def test_new_client_connections_share_one_upstream_connection(
    proxy: ProxyProcess, upstream: Upstream
) -> None:
    upstream.clear()
    for n in range(5):
        response = fresh_get(proxy, f"https://api.anthropic.com:{upstream.tls_port}/pkg/{n}")
        assert response.json() == {"ok": True, "path": f"/pkg/{n}"}
    assert [r.path for r in upstream.received] == [f"/pkg/{n}" for n in range(5)]
    assert len({r.peer for r in upstream.received}) == 1
    # The decision and closing lines are the ones every request gets.
    line = proxy.wait_for_audit(lambda r: r["path"] == "/pkg/4")
    assert (line["kind"], line["verdict"], line["host"]) == ("http", "allow", "api.anthropic.com")
    closing = proxy.wait_for_audit(
        lambda r: r["kind"] == "response" and r["flow_id"] == line["flow_id"]
    )
    assert closing["extra"] == {"status": 200}
    assert closing["bytes_in"] == len(response.content)


def test_different_hosts_never_share_a_connection(proxy: ProxyProcess, upstream: Upstream) -> None:
    upstream.clear()
    for host in ("api.anthropic.com", "github.com", "api.anthropic.com", "github.com"):
        assert fresh_get(proxy, f"https://{host}:{upstream.tls_port}/h").status_code == 200
    peers: dict[str, set[tuple[str, int]]] = {}
    for seen in upstream.received:
        peers.setdefault(seen.host.split(":")[0], set()).add(seen.peer)
    assert len(peers["api.anthropic.com"]) == 1
    assert len(peers["github.com"]) == 1
    assert peers["api.anthropic.com"] != peers["github.com"]


def test_a_response_on_a_kept_connection_is_scrubbed(
    proxy: ProxyProcess, upstream: Upstream
) -> None:
    base = store_real_key(proxy, upstream, "kept")
    bodies = [fresh_get(proxy, base).text for _ in range(2)]
    assert bodies == [f"key={PLACEHOLDER}"] * 2
    gets = [r.peer for r in upstream.received if r.method == "GET"]
    assert len(gets) == 2 and len(set(gets)) == 1
    assert REAL_KEY not in proxy.audit_text()


def test_streamed_responses_still_stream_and_are_scrubbed(
    proxy: ProxyProcess, upstream: Upstream
) -> None:
    base = store_real_key(proxy, upstream, "streamed")
    for _ in range(2):
        response = fresh_get(proxy, f"{base}?chunked=1")
        assert response.status_code == 200
        assert response.text == f"key={PLACEHOLDER}"
    # The first went out twice: the pool saw it must stream and left it to mitmproxy,
    # which then got the resource alone.
    assert [r.method for r in upstream.received] == ["PUT", "GET", "GET", "GET"]


def test_a_connection_the_upstream_closed_while_idle_is_not_used(
    proxy: ProxyProcess, closing: RawUpstream
) -> None:
    closing.clear()
    url = f"https://github.com:{closing.tls_port}/idle"
    assert fresh_get(proxy, url).text == "ok"
    time.sleep(0.8)  # the upstream drops the idle connection after 0.3 s
    assert fresh_get(proxy, url).text == "ok"
    assert [c.count(b"GET /idle ") for c in closing.connections] == [1, 1]


def test_an_untrusted_certificate_is_refused_every_time(
    proxy: ProxyProcess, untrusted: RawUpstream
) -> None:
    untrusted.clear()
    url = f"https://example.com:{untrusted.tls_port}/x"
    assert [fresh_get(proxy, url).status_code for _ in range(2)] == [502, 502]
    assert untrusted.wire == b""


def test_a_reload_starts_new_connections(proxy: ProxyProcess, upstream: Upstream) -> None:
    upstream.clear()
    url = f"https://api.anthropic.com:{upstream.tls_port}/reload"
    assert fresh_get(proxy, url).status_code == 200
    proxy.signal(signal.SIGHUP)
    wait_for(lambda: "reloaded" in proxy.stderr)
    assert fresh_get(proxy, url).status_code == 200
    assert fresh_get(proxy, url).status_code == 200
    first, *after = [r.peer for r in upstream.received]
    assert after[0] == after[1] != first

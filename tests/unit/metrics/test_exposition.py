"""The metrics server binds at start and loads its HTTP side at the first scrape."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter

from agentcage.metrics.exposition import MetricsEndpoint, MetricsServer

# prometheus_client's HTTP servers and clients, and our WSGI side: none before a scrape.
HTTP_SIDE = (
    "agentcage.metrics.wsgi_server",
    "prometheus_client.exposition",
    "wsgiref",
    "http.server",
    "urllib.request",
)

_SCRAPED_ONCE = """
import json, sys
from pathlib import Path
import agentcage.metrics.exposition as exposition
import agentcage.metrics.sidecar_registry as sidecar_registry
from agentcage.metrics.scrape import scrape_unix

def loaded():
    return sorted(m for m in sys.modules if m.startswith({http_side!r}))

metrics = sidecar_registry.SidecarRegistry("proxy", "Requests")
metrics.policy.info({{"version": "abc"}})
server = exposition.MetricsServer(
    metrics.registry, exposition.MetricsEndpoint(socket_path=Path(sys.argv[1]))
)
before = loaded()
families = scrape_unix(Path(sys.argv[1]))
after = loaded()
server.close()
print(json.dumps([before, after, families.total("agentcage_proxy_policy_info")]))
"""


def test_the_http_side_loads_at_the_first_scrape(tmp_path: Path) -> None:
    script = _SCRAPED_ONCE.format(http_side=HTTP_SIDE)
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "m.sock")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    before, after, info = json.loads(out.stdout)
    assert before == []
    assert "agentcage.metrics.wsgi_server" in after and "prometheus_client.exposition" in after
    assert info == 1


def test_a_loopback_port_is_served_as_prometheus_clients_app_serves() -> None:
    registry = CollectorRegistry()
    Counter("scrapes_seen", "doc", registry=registry).inc(2)
    server = MetricsServer(registry, MetricsEndpoint(host="127.0.0.1", port=0))
    host, port = server.url.removeprefix("http://").removesuffix("/metrics").rsplit(":", 1)
    try:
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        assert response.status == 200
        assert b"scrapes_seen_total 2.0" in response.read()
        connection.request("POST", "/metrics", body=b"")
        refused = connection.getresponse()
        assert refused.status == 405  # the WSGI app's own answer
        refused.read()
        connection.close()
    finally:
        server.close()

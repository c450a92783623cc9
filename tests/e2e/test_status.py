"""`cage status` of a real cage, its metrics read from the sidecars' sockets on the host,
and proof that the agent cannot reach those metrics (issue 16)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from agentcage.cage import topology
from agentcage.cage.state import StateStore
from agentcage.cli.cage_cmd import UNHEALTHY
from tests.e2e.conftest import deployed
from tests.e2e.harness import Harness, Internet

AGENT = "agentcage-basic-agent"
# From inside the agent: one request the proxy blocks and one name the DNS sidecar refuses.
TRAFFIC = """
import socket, urllib.request
try:
    urllib.request.urlopen("https://not-allowed.example/", timeout=10)
except Exception as exc:
    print("blocked:", exc)
try:
    socket.getaddrinfo("exfil.not-allowed.example", 443)
except OSError as exc:
    print("refused:", exc)
"""
# What the agent can see of the sidecars' metrics: the socket paths and a metrics server
# on a port. A connect alone proves nothing: on the proxy's address the default deny's
# listener accepts any port and resets (docs/transparent.md). An HTTP answer would.
PROBE = """
import json, os, socket, sys
found = {p: os.path.exists(p) for p in ("/run/agentcage/metrics", sys.argv[1])}
for host in sys.argv[2:]:
    for port in (9090, 9100, 9464, 9465, 8000):
        try:
            with socket.create_connection((host, port), timeout=2) as conn:
                conn.sendall(f"GET /metrics HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n".encode())
                found[f"{host}:{port}"] = conn.recv(5) == b"HTTP/"
        except OSError:
            found[f"{host}:{port}"] = False
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def basic(harness: Harness, internet: Internet) -> Iterator[str]:
    """The session's examples/basic cage, or a new one: test_cage.py destroys the session's
    in its last test, and this module runs after it."""
    if harness.agentcage("cage", "status", "basic").returncode in (0, UNHEALTHY):
        yield "basic"
    else:
        yield from deployed(harness, internet)


def _status(harness: Harness) -> dict[str, Any]:
    result = harness.agentcage("cage", "status", "basic", "--json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_status_reads_systemd_podman_and_the_sidecars_metrics(
    harness: Harness, internet: Internet, basic: str
) -> None:
    before = _status(harness)
    harness.exec("podman", "exec", AGENT, "python3", "-c", TRAFFIC)
    report = _status(harness)
    services = {s["role"]: s for s in report["services"]}
    assert set(services) == {"dns", "proxy", "agent", "ports"}
    for role in ("dns", "proxy", "agent"):
        service = services[role]
        assert service["state"] == "active" and service["sub_state"] == "running", service
        assert service["image_digest"].startswith("sha256:"), service
        assert service["started_at"].endswith("+00:00") and service["uptime_s"] > 0, service
        assert service["restarts"] == 0, service
    assert services["proxy"]["health"] == services["dns"]["health"] == "healthy"
    assert report["policy"]["current"] is True
    assert report["healthy"] is True and report["problems"] == []
    for role in ("proxy", "dns"):
        metrics = report["metrics"][role]
        assert metrics["error"] is None, metrics
        assert metrics["policy_version"] == report["policy"]["version"]
        assert metrics["last_hour"]["block"] > before["metrics"][role]["last_hour"]["block"]
    # The session's host is `agentcage host start`'s privileged container: said as weakened.
    assert any("privileged host container" in line for line in report["weakened"]), report
    text = harness.agentcage("cage", "status", "basic")
    assert text.returncode == 0, text.stderr
    print(f"\n$ agentcage cage status basic\n{text.stdout}")  # the docs' transcript


def test_the_agent_cannot_reach_the_metrics(harness: Harness, basic: str) -> None:
    host_socket = harness.config_home / "agentcage/deployments/basic/metrics/proxy/proxy.sock"
    assert host_socket.exists()  # the host has it ...
    topo = topology.load(StateStore(harness.config_home / "agentcage"), "basic")
    assert topo is not None
    out = harness.exec(
        "podman", "exec", AGENT, "python3", "-c", PROBE, str(host_socket), topo.proxy_ip,
        topo.dns_ip,
    )  # fmt: skip
    seen = json.loads(out.strip().splitlines()[-1])
    assert not any(seen.values()), seen  # ... the agent has neither the path nor a port
    result = harness.agentcage("cage", "verify", "basic", "--json")
    (check,) = [c for c in json.loads(result.stdout) if c["name"].startswith("metrics")]
    assert check["passed"], check

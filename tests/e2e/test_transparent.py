"""Programs that ignore proxy settings in a real cage: Node's fetch(), urllib, raw sockets.

The agent runs the package-manager image (Debian's nodejs and python3) with the cage's
default wiring: the DNS sidecar steers allowed names to the proxy's transparent
listeners (docs/transparent.md). Nothing in the agent is set up for it.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentcage.cage.netcheck import FLOWS, transparent_checks
from agentcage.cage.steering import TABLE as STEERING_TABLE
from agentcage.cage.topology import Topology
from tests.e2e.conftest import REAL_KEY
from tests.e2e.harness import INTERNET_IP, INTERNET_SUBNET, REPO, Harness, Internet
from tests.e2e.transparent_scenarios import SCAN_PORTS
from tests.support.audit_lines import whole_records

CAGE = "tp"
AGENT = f"agentcage-{CAGE}-agent"
PLACEHOLDER = "{{ANTHROPIC_API_KEY}}"
DIAGNOSTICS = Path(tempfile.gettempdir()) / "agentcage-e2e-transparent-diagnostics.json"


def config(internet: Internet) -> dict[str, Any]:
    return {
        "name": CAGE,
        "container": {
            "image": internet.image,
            "command": ["sleep", "infinity"],
            "volumes": [f"{REPO}/tests/e2e:/e2e:ro"],
        },
        "secret_injection": [
            {"env": "ANTHROPIC_API_KEY", "inject_to": ["anthropic.com"], "places": ["headers"]}
        ],
        "domains": {"allow": ["anthropic.com", "github.com"]},
        "dns_servers": [INTERNET_IP],
        "network": {"allow_cidrs": [INTERNET_SUBNET]},
    }


def deployment(harness: Harness, *parts: str) -> Any:
    return harness.config_home.joinpath("agentcage/deployments", CAGE, *parts)


def audit(harness: Harness) -> list[dict[str, Any]]:
    path = deployment(harness, "audit/proxy/proxy.jsonl")
    return whole_records(path.read_text())


@pytest.fixture(scope="module")
def tp_cage(harness: Harness, internet: Internet) -> Iterator[str]:
    path = harness.shared / f"{CAGE}.yaml"
    path.write_text(json.dumps(config(internet), indent=2))
    created = harness.agentcage(
        "cage", "create", "-c", str(path), "--upstream-ca", str(internet.ca_pem)
    )
    assert created.returncode == 0, created.stderr
    stored = harness.agentcage("secret", "set", CAGE, "ANTHROPIC_API_KEY", input=REAL_KEY)
    assert stored.returncode == 0, stored.stderr
    try:
        yield CAGE
    finally:
        harness.agentcage("cage", "destroy", CAGE, "-y")


@pytest.fixture(scope="module")
def proxy_ip(harness: Harness, tp_cage: str) -> str:
    return Topology(**json.loads(deployment(harness, "topology.json").read_text())).proxy_ip


@pytest.fixture(scope="module")
def outcome(harness: Harness, internet: Internet, tp_cage: str, proxy_ip: str) -> dict[str, Any]:
    # The fake internet serves the whole session: earlier modules' traffic (test_cage.py
    # allowlists attacker.example and sends to it) is not this module's.
    since = len(internet.http())
    out = harness.exec(
        "podman", "exec", AGENT, "python3", "/e2e/transparent_scenarios.py", proxy_ip, INTERNET_IP
    )
    # How the agent's route and its setup stood: what a failure below is read against.
    routes = harness.exec("podman", "exec", AGENT, "cat", "/proc/net/route", check=False)
    setup = harness.exec(
        "journalctl", "--no-pager", "-n", "30", "-u", f"{AGENT}.service", check=False
    )
    proxy = f"agentcage-{CAGE}-proxy"
    steering = harness.exec(
        "sh", "-c", f"podman exec {proxy} ip rule; podman exec {proxy} ip route show table all"
        f" | grep -v ' ff'; journalctl --no-pager -n 40 -u {proxy}.service",
        check=False,
    )  # fmt: skip
    return {
        **json.loads(out.strip().splitlines()[-1]),
        "arrivals_since": since,
        "diagnostics": {"routes": routes, "agent_unit": setup[-3000:], "proxy": steering[-4000:]},
    }


def arrivals(internet: Internet, outcome: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in internet.http()[outcome["arrivals_since"] :]]


def test_allowed_names_resolve_to_the_proxy(outcome: dict[str, Any], proxy_ip: str) -> None:
    assert outcome["resolved"] == proxy_ip


@pytest.mark.parametrize("client", ["node", "urllib"])
def test_no_proxy_client_gets_injection_and_redaction(
    internet: Internet, outcome: dict[str, Any], client: str
) -> None:
    assert outcome[client] == {"status": 200, "body": PLACEHOLDER}
    arrived = [r for r in arrivals(internet, outcome) if r["path"] == "/echo-key"]
    assert arrived and all(r["headers"]["x-api-key"] == REAL_KEY for r in arrived)


def test_unlisted_host_is_refused(internet: Internet, outcome: dict[str, Any]) -> None:
    assert "error" in outcome["unlisted"]  # sinkholed: no route
    assert outcome["unlisted_at_proxy"]["status"] == 403
    assert not [r for r in arrivals(internet, outcome) if "attacker.example" in str(r["host"])]


def test_sni_host_mismatch_and_bare_ip_are_refused(
    harness: Harness, outcome: dict[str, Any]
) -> None:
    assert outcome["sni_host_mismatch"]["status"] == 403
    assert "host-agreement" in outcome["sni_host_mismatch"]["body"]
    assert "error" in outcome["bare_ip_tls"]
    lines = audit(harness)
    assert any(
        line["kind"] == "connection" and "without a server name" in line["reason"] for line in lines
    )


def flow_lines(harness: Harness, host: str, port: int, protocol: str) -> list[dict[str, Any]]:
    return [
        line
        for line in audit(harness)
        if line["kind"] == "flow"
        and (line["host"], line["port"], line["scheme"]) == (host, port, protocol)
    ]


def test_other_ports_and_udp_are_refused_and_audited(
    harness: Harness, outcome: dict[str, Any], proxy_ip: str
) -> None:
    assert outcome["tcp_22"]["refused"] is True, outcome["tcp_22"]
    assert outcome["tcp_5432"]["refused"] is True, outcome["tcp_5432"]
    assert outcome["udp_123"]["answered"] is False
    for port, protocol in ((22, "tcp"), (5432, "tcp"), (123, "udp")):
        assert flow_lines(harness, proxy_ip, port, protocol), (port, protocol)


def test_raw_ip_flows_are_refused_and_audited(
    harness: Harness, internet: Internet, outcome: dict[str, Any]
) -> None:
    """No name at all: the agent's default route leads only to the proxy's deny listener."""
    assert outcome["raw_tcp_22"]["refused"] is True, outcome["raw_tcp_22"]
    assert outcome["raw_tcp_5432"]["refused"] is True, outcome["raw_tcp_5432"]
    assert outcome["raw_udp_123"]["answered"] is False
    assert outcome["raw_udp_53"]["answered"] is False  # the fake internet's resolver is there
    assert "error" in outcome["raw_ip_tls"]
    for port, protocol in ((22, "tcp"), (5432, "tcp"), (123, "udp"), (53, "udp"), (443, "tcp")):
        lines = flow_lines(harness, INTERNET_IP, port, protocol)
        if len(lines) != 1:
            DIAGNOSTICS.write_text(json.dumps(outcome["diagnostics"], indent=1))
        assert len(lines) == 1, (port, protocol, f"diagnostics in {DIAGNOSTICS}")
        [line] = lines
        assert (line["verdict"], line["inspector"]) == ("block", "deny")
    assert not [r for r in arrivals(internet, outcome) if r["path"] == "/transparent"]


def test_a_port_scan_leaves_a_bounded_number_of_lines(
    harness: Harness, outcome: dict[str, Any]
) -> None:
    scanned = len(SCAN_PORTS)
    assert outcome["scan_refused"] == scanned
    deadline = time.monotonic() + 20  # the summary comes when the budget's window ends
    while True:
        lines = audit(harness)
        summaries = [
            line
            for line in lines
            if line["kind"] == "flow" and "suppressed" in line.get("extra", {})
        ]
        if summaries or time.monotonic() > deadline:
            break
        time.sleep(1)
    singles = [line for line in lines if line["kind"] == "flow" and line["port"] in SCAN_PORTS]
    assert summaries, "no summary line"
    assert len(singles) <= 3 * 20  # 20 per client per 10 s window; the scan takes under 30 s
    assert len(singles) + sum(s["extra"]["suppressed"] for s in summaries) >= scanned


def test_verify_checks_the_transparent_path(harness: Harness, tp_cage: str) -> None:
    result = harness.agentcage("cage", "verify", CAGE, "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    for name, _ in transparent_checks("unused", "unused"):
        assert checks[name]["passed"], checks[name]
    for name in ("proxy does not forward", "agent routes via the proxy"):
        assert checks[name]["passed"], checks[name]
    for name in FLOWS:
        assert checks[name]["detail"].endswith("; audited"), checks[name]


def test_verify_checks_again_at_once_without_a_clash(harness: Harness, tp_cage: str) -> None:
    """Each verify's datagram leaves from the agent's address: a second verify within
    conntrack's 30 s must still get its own `flow` line (verify_network.udp_host)."""
    result = harness.agentcage("cage", "verify", CAGE, "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    for name in FLOWS:
        assert checks[name]["passed"], checks[name]


def test_verify_fails_each_flow_check_once_default_deny_is_gone(
    harness: Harness, tp_cage: str
) -> None:
    """Last in this module: it breaks the cage. Without the proxy's nftables table a
    connection to another port gets the kernel's reset and a datagram is dropped, both
    unaudited: every refused-flow check must fail, and verify with it."""
    proxy = f"agentcage-{CAGE}-proxy"
    pid = harness.exec("podman", "container", "inspect", "--format", "{{.State.Pid}}", proxy)
    # The proxy image's nft, in the proxy's namespaces (the harness has none of its own).
    harness.exec(
        "nsenter", f"--target={pid.strip()}", "--mount", "--net",
        "nft", "delete", "table", "ip", STEERING_TABLE,
    )  # fmt: skip
    result = harness.agentcage("cage", "verify", CAGE, "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert result.returncode != 0
    for name in FLOWS:
        assert not checks[name]["passed"], checks[name]
    assert "no `flow` line" in checks["raw TCP to port 22 refused"]["detail"]
    assert "no `flow` line" in checks["UDP to port 123 unanswered"]["detail"]

"""Default deny with audit (docs/transparent.md): flows past the proxy's services are
refused, and each leaves a `kind: flow` line, rate-limited per client.

`deny_probe.py` builds an agent and a proxy network namespace joined by a veth pair,
installs the cage's steering (`agentcage.cage.steering`) and runs the real `agentcage
proxy run --transparent ADDR --deny-flows`; these tests read its report.
"""

from __future__ import annotations

from typing import Any

import pytest

from agentcage.cage.steering import SELF_CHECK
from tests.integration.proxy.deny_probe import AGENT, BURST, DNS, MODULE, OUTSIDE, PROXY, SCAN
from tests.support.netns import probe_report

pytestmark = pytest.mark.integration
Report = dict[str, Any]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    out = tmp_path_factory.mktemp("deny") / "report.json"
    data: Report = probe_report(MODULE, out, timeout=400)
    assert data["agent_exit"] == 0, data["agent_stderr"]
    assert data["proxy_exit"] == 0, data["proxy_stderr"]
    return data


def flows(report: Report, host: str, port: int, protocol: str) -> list[dict[str, Any]]:
    return [
        line
        for line in report["audit"]
        if line["kind"] == "flow"
        and (line["host"], line["port"], line["scheme"]) == (host, port, protocol)
    ]


def test_the_agent_routes_via_the_proxy_once_its_deny_listener_answers(report: Report) -> None:
    assert f"default via {PROXY}" in report["routes"]
    [check] = flows(report, SELF_CHECK, 9, "tcp")  # the route's own check, one line
    assert check["client"].startswith(f"{AGENT}:")


def test_without_the_proxys_steering_the_agent_keeps_no_route(report: Report) -> None:
    """Fail closed: a route to a namespace that would drop flows unaudited is taken back."""
    unsteered = report["unsteered"]
    assert unsteered["exit"] != 0
    assert "no deny listener behind" in unsteered["stderr"]
    assert "default" not in unsteered["routes"]


@pytest.mark.parametrize(
    ("case", "host", "port"),
    [("tcp22", OUTSIDE, 22), ("tcp5432", OUTSIDE, 5432), ("proxy22", PROXY, 22)],
)
def test_tcp_to_another_port_is_reset_and_audited(
    report: Report, case: str, host: str, port: int
) -> None:
    assert report["agent"][case]["outcome"] in ("ConnectionResetError", "closed")
    [line] = flows(report, host, port, "tcp")
    assert line["verdict"] == "block"
    assert line["inspector"] == "deny"
    assert line["client"].startswith(f"{AGENT}:")
    assert line["reason"].startswith(f"TCP to {host}:{port} refused")


@pytest.mark.parametrize(("case", "host"), [("udp123", OUTSIDE), ("proxy_udp123", PROXY)])
def test_udp_is_unanswered_and_audited(report: Report, case: str, host: str) -> None:
    assert report["agent"][case]["outcome"] == "unanswered"
    [line] = flows(report, host, 123, "udp")
    assert (line["verdict"], line["client"]) == ("block", AGENT)


def test_beside_the_dns_sidecar_only_its_port_53_is_let_through(report: Report) -> None:
    """A microVM guest: the DNS sidecar's address is in the proxy's namespace (`--dns`)."""
    assert report["agent"]["dns_udp53"]["outcome"] == "answered"
    assert report["agent"]["dns_tcp53"] == {"outcome": "data", "data": "dns"}
    assert not flows(report, DNS, 53, "udp") and not flows(report, DNS, 53, "tcp")
    assert report["agent"]["dns_tcp22"]["outcome"] in ("ConnectionResetError", "closed")
    [line] = flows(report, DNS, 22, "tcp")
    assert line["verdict"] == "block"


def test_bare_ip_tls_is_refused_and_audited(report: Report) -> None:
    assert report["agent"]["bare_ip_tls"]["outcome"] != "handshake completed"
    [line] = flows(report, OUTSIDE, 443, "tcp")
    assert line["inspector"] == "deny"


def test_a_port_scan_gets_a_bounded_number_of_lines(report: Report) -> None:
    assert report["agent"]["burst_refused"] == BURST
    scanned = [line for line in report["audit"] if line.get("host") == SCAN]
    summaries = [line for line in report["audit"] if "suppressed" in line.get("extra", {})]
    # 20 lines per client per 10 s window, and one summary per window that left any out.
    assert 1 <= len(summaries) <= 3
    assert len(scanned) <= 3 * 20
    assert len(scanned) + sum(s["extra"]["suppressed"] for s in summaries) >= BURST
    summary = summaries[-1]
    assert summary["kind"] == "flow" and summary["client"] == AGENT
    assert summary["reason"].startswith(f"{summary['extra']['suppressed']} more refused flows")

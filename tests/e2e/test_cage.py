"""A real cage from examples/basic under real systemd + Podman 5, against a fake internet.

Each outcome is asserted from three sides: what the agent saw, what reached the fake
internet, and what the audit log says. The last test destroys the cage and checks that
nothing of it is left.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentcage.cage.topology import Topology
from tests.e2e.conftest import REAL_KEY
from tests.e2e.harness import PUBLISHED_PORT, Harness, Internet
from tests.support.audit_lines import whole_records

AGENT = "agentcage-basic-agent"
PROXY = "agentcage-basic-proxy"
PLACEHOLDER = "{{ANTHROPIC_API_KEY}}"


def audit(harness: Harness, name: str) -> list[dict[str, Any]]:
    return whole_records(harness.audit_text("basic", name))


def proxy_ip(harness: Harness) -> str:
    path = harness.config_home / "agentcage/deployments/basic/topology.json"
    return Topology(**json.loads(path.read_text())).proxy_ip


def scenarios(harness: Harness, internet: Internet) -> dict[str, Any]:
    out = harness.exec(
        "podman", "exec", "-e", "PYTHONPATH=/e2e-site", "-e", f"E2E_INTERNET_IP={internet.ip}",
        AGENT, "python3", "/e2e/agent_scenarios.py",
    )  # fmt: skip
    return dict(json.loads(out.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def outcome(harness: Harness, internet: Internet, cage: str) -> dict[str, Any]:
    return scenarios(harness, internet)


def test_all_three_containers_run_hardened(harness: Harness, cage: str) -> None:
    listing = harness.agentcage("cage", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    (row,) = json.loads(listing.stdout)
    assert row["name"] == "basic" and row["state"] == "active"
    for role in ("agent", "proxy", "dns"):
        inspect = json.loads(harness.exec("podman", "inspect", f"agentcage-basic-{role}"))[0]
        host = inspect["HostConfig"]
        assert host["ReadonlyRootfs"] is True, role
        assert inspect["Config"]["User"] not in ("", "0", "root"), role
        assert "no-new-privileges" in " ".join(host["SecurityOpt"]), role
        assert host["PidsLimit"] > 0, role
    agent_nets = json.loads(harness.exec("podman", "inspect", AGENT))[0]["NetworkSettings"]
    assert set(agent_nets["Networks"]) == {"agentcage-basic-int"}


def test_verify_passes_every_check(harness: Harness, cage: str) -> None:
    result = harness.agentcage("cage", "verify", "basic", "--json")
    checks = json.loads(result.stdout)
    failed = [c for c in checks if not c["passed"]]
    assert result.returncode == 0 and not failed, failed
    names = {c["name"] for c in checks}
    assert {"no direct route out", "unlisted name sinkholed", "unlisted host blocked"} <= names
    assert {"allowlisted host reachable", "fake key in body blocked", "no capabilities"} <= names


def test_allowed_request_gets_the_real_key_and_the_agent_never_sees_it(
    harness: Harness, internet: Internet, outcome: dict[str, Any]
) -> None:
    assert outcome["env_key"] == PLACEHOLDER
    assert outcome["allowed"]["status"] == 200
    # The upstream echoed the key it received; the proxy scrubbed it on the way back.
    assert outcome["allowed"]["body"] == PLACEHOLDER
    arrived = [r for r in internet.http() if r["path"] == "/echo-key"]
    assert arrived and arrived[-1]["headers"]["x-api-key"] == REAL_KEY
    # The same through a chunked response (no Content-Length).
    assert outcome["allowed_chunked"] == {"status": 200, "body": PLACEHOLDER}


def test_unlisted_host_is_blocked_and_never_reached(
    harness: Harness, internet: Internet, outcome: dict[str, Any]
) -> None:
    assert outcome["blocked_host"]["status"] == 403
    assert '"blocked": true' in outcome["blocked_host"]["body"]
    assert not [r for r in internet.http() if "attacker.example" in str(r["host"])]
    blocked = [r for r in audit(harness, "proxy") if r["host"] == "attacker.example"]
    assert blocked and blocked[0]["verdict"] == "block"


def test_leaked_credential_and_misplaced_placeholder_are_blocked(
    harness: Harness, internet: Internet, outcome: dict[str, Any]
) -> None:
    assert outcome["leak"]["status"] == 403
    assert outcome["placeholder_wrong_host"]["status"] == 403
    github = [r for r in internet.http() if r["host"] == "github.com"]
    assert not [r for r in github if r["path"] in ("/upload", "/steal")]
    assert REAL_KEY not in json.dumps(internet.http()[:0] + github)
    records = audit(harness, "proxy")
    reasons = {r["path"]: r for r in records if r["host"] == "github.com"}
    assert reasons["/upload"]["verdict"] == "block"
    assert reasons["/steal"]["verdict"] == "block"
    assert REAL_KEY not in json.dumps(records)


def test_dns_sinkholes_and_refuses_tunnels(
    harness: Harness, internet: Internet, outcome: dict[str, Any]
) -> None:
    # Steered to the proxy's transparent listeners (docs/transparent.md).
    assert outcome["dns_allowed"]["answers"] == [proxy_ip(harness)]
    assert outcome["dns_sinkhole"]["answers"] == ["198.51.100.1"]
    assert outcome["dns_tunnel_txt"]["rcode"] == "REFUSED"
    asked = [q["name"] for q in internet.dns()]
    assert "api.anthropic.com" in asked
    assert not [name for name in asked if str(name).endswith("attacker.example")]
    blocked = [r for r in audit(harness, "dns") if r["verdict"] == "block"]
    assert any("attacker.example" in r["qname"] for r in blocked)


def test_curl_ignoring_the_proxy_variables_goes_through_the_same_inspection(
    internet: Internet, outcome: dict[str, Any]
) -> None:
    assert outcome["curl_noproxy"] == {"exit": 0, "status": 200, "body": PLACEHOLDER}
    assert outcome["curl_noproxy_unlisted"]["exit"] != 0  # sinkholed: no route
    assert not [r for r in internet.http() if r["path"] == "/collect" and r["status"] == 200]


def test_direct_ip_egress_is_refused_and_audited(
    harness: Harness, internet: Internet, outcome: dict[str, Any]
) -> None:
    """The agent's default route leads to the proxy's deny listener (docs/transparent.md):
    the connect may complete there, but nothing reaches the address and a line says so."""
    assert outcome["direct_ip"]["answered"] is False, outcome["direct_ip"]
    assert not [r for r in internet.http() if r["path"] == "/direct-ip"]
    flows = [
        r
        for r in audit(harness, "proxy")
        if r["kind"] == "flow" and (r["host"], r["port"], r["scheme"]) == (internet.ip, 443, "tcp")
    ]
    assert flows and flows[-1]["verdict"] == "block", outcome["direct_ip"]


def test_websocket_frames_are_injected_scrubbed_and_blocked(
    internet: Internet, outcome: dict[str, Any]
) -> None:
    assert outcome["websocket_inject"]["echoed"] == [f"hello {PLACEHOLDER}"]
    messages = [r["message"] for r in internet.http() if r["kind"] == "websocket"]
    assert f"hello {REAL_KEY}" in messages
    assert outcome["websocket_leak"]["echoed"] == ["ok"]
    assert outcome["websocket_leak"]["closed"] == 1008
    assert not [m for m in messages if "AKIAZ7VQ3XK2M4N5P6RT" in str(m)]


def test_domain_add_applies_live_without_restarting_the_agent(
    harness: Harness, internet: Internet, outcome: dict[str, Any]
) -> None:
    started = harness.exec("podman", "inspect", "--format", "{{.State.StartedAt}}", AGENT)
    added = harness.agentcage("domain", "add", "basic", "attacker.example")
    assert added.returncode == 0, added.stderr
    try:
        again = scenarios(harness, internet)
        assert again["blocked_host"]["status"] == 200
        assert [r for r in internet.http() if r["host"] == "attacker.example"]
    finally:
        removed = harness.agentcage("domain", "rm", "basic", "attacker.example")
        assert removed.returncode == 0, removed.stderr
    assert scenarios(harness, internet)["blocked_host"]["status"] == 403
    after = harness.exec("podman", "inspect", "--format", "{{.State.StartedAt}}", AGENT)
    assert after == started


def test_published_port_reaches_the_agent(harness: Harness, cage: str) -> None:
    request = (
        f"exec 3<>/dev/tcp/127.0.0.1/{PUBLISHED_PORT} && "
        "printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && timeout 5 cat <&3"
    )
    page = harness.exec("bash", "-c", request)
    assert "200 OK" in page and "agent.py" in page


def test_logs_reload_and_secret_list(harness: Harness, cage: str) -> None:
    proxy_logs = harness.agentcage("cage", "logs", "basic", "-s", "proxy")
    assert proxy_logs.returncode == 0 and "listening on" in proxy_logs.stdout
    dns_logs = harness.agentcage("cage", "logs", "basic", "-s", "dns")
    assert dns_logs.returncode == 0 and "listening on" in dns_logs.stdout
    started = harness.exec("podman", "inspect", "--format", "{{.State.StartedAt}}", AGENT)
    reloaded = harness.agentcage("cage", "reload", "basic")
    assert reloaded.returncode == 0, reloaded.stderr
    assert harness.exec("podman", "inspect", "--format", "{{.State.StartedAt}}", AGENT) == started
    listed = harness.agentcage("secret", "list", "basic")
    assert "ANTHROPIC_API_KEY" in listed.stdout and "set" in listed.stdout
    assert REAL_KEY not in listed.stdout + listed.stderr


def test_secret_set_on_a_running_cage_restarts_the_proxy_and_not_the_agent(
    harness: Harness, internet: Internet, cage: str
) -> None:
    def started(container: str) -> str:
        return harness.exec("podman", "inspect", "--format", "{{.State.StartedAt}}", container)

    agent, proxy = started(AGENT), started(PROXY)
    result = harness.agentcage("secret", "set", "basic", "ANTHROPIC_API_KEY", input=REAL_KEY)
    assert result.returncode == 0, result.stderr
    assert started(PROXY) != proxy  # it holds the new value
    assert started(AGENT) == agent
    again = scenarios(harness, internet)
    assert again["allowed"]["status"] == 200 and again["allowed"]["body"] == PLACEHOLDER


def test_update_redeploys_and_the_cage_still_holds(harness: Harness, internet: Internet) -> None:
    updated = harness.agentcage("cage", "update", "basic")
    assert updated.returncode == 0, updated.stderr
    again = scenarios(harness, internet)
    assert again["env_key"] == PLACEHOLDER
    assert again["allowed"]["status"] == 200 and again["allowed"]["body"] == PLACEHOLDER
    assert again["blocked_host"]["status"] == 403


def test_destroy_leaves_nothing(harness: Harness, cage: str) -> None:
    result = harness.agentcage("cage", "destroy", "basic", "-y")
    assert result.returncode == 0, result.stderr
    assert not harness.exec("podman", "ps", "-a", "--filter", "label=agentcage.cage=basic", "-q")
    networks = harness.exec("podman", "network", "ls", "--format", "{{.Name}}").split()
    assert not [n for n in networks if n.startswith("agentcage-basic")]
    assert "agentcage-basic" not in harness.exec("podman", "secret", "ls")
    assert not harness.unit_files("agentcage-basic-*")
    assert not (harness.config_home / "agentcage/deployments/basic").exists()
    units = harness.exec("systemctl", "list-units", "--all", "--no-legend", "agentcage-basic*")
    assert not units.strip()

"""The same cage as an unprivileged user: rootless Podman under `systemd --user`."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from agentcage.cage.images import AGENT_DEBIAN_IMAGE, AGENT_DEBIAN_PACKAGES, ImageBuilder
from agentcage.cage.podman import SubprocessRunner
from tests.e2e.conftest import REAL_KEY
from tests.e2e.harness import BUILD_ENV, IDLE, Harness, Internet, RootlessUser, e2e_config
from tests.support.audit_lines import whole_records

PLACEHOLDER = "{{ANTHROPIC_API_KEY}}"


@pytest.fixture(scope="module")
def user(harness: Harness, internet: Internet) -> Iterator[RootlessUser]:
    builder = ImageBuilder(SubprocessRunner(env=BUILD_ENV))
    sidecars = builder.sidecar_images("debian")
    agent = builder.debian_image("agentcage-agent-debian", AGENT_DEBIAN_PACKAGES)
    user = harness.add_user()
    user.load_images([sidecars.proxy, sidecars.dns, agent])
    user.exec("podman", "tag", agent, AGENT_DEBIAN_IMAGE)
    config = e2e_config(harness, IDLE)
    config.chmod(0o644)
    ca = harness.shared / "internet-ca.pem"
    shutil.copy(internet.ca_pem, ca)
    ca.chmod(0o644)
    created = user.agentcage("cage", "create", "-c", str(config), "--upstream-ca", str(ca))
    if created.returncode != 0:
        journal = harness.exec("journalctl", "--no-pager", "-o", "cat", "_UID=1000", "-n", "60")
        raise AssertionError(f"{created.stderr}\n--- user journal ---\n{journal}")
    secret = user.agentcage("secret", "set", "basic", "ANTHROPIC_API_KEY", input=REAL_KEY)
    assert secret.returncode == 0, secret.stderr
    yield user
    user.agentcage("cage", "destroy", "basic", "-y")


def test_rootless_units_live_in_the_users_systemd(user: RootlessUser) -> None:
    units = user.exec("ls", f"/home/{user.name}/.config/containers/systemd").split()
    assert "agentcage-basic-agent.container" in units
    state = user.exec("systemctl", "--user", "is-active", "agentcage-basic-agent.service")
    assert state.strip() == "active"
    assert user.exec("podman", "info", "--format", "{{.Host.Security.Rootless}}").strip() == "true"


def test_rootless_verify_passes(user: RootlessUser) -> None:
    result = user.agentcage("cage", "verify", "basic", "--json")
    failed = [c for c in json.loads(result.stdout) if not c["passed"]]
    assert result.returncode == 0 and not failed, failed


def test_rootless_cage_holds(user: RootlessUser, internet: Internet) -> None:
    out = user.exec(
        "podman", "exec", "-e", "PYTHONPATH=/e2e-site", "-e", f"E2E_INTERNET_IP={internet.ip}",
        "agentcage-basic-agent", "python3", "/e2e/agent_scenarios.py",
    )  # fmt: skip
    outcome: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    assert outcome["env_key"] == PLACEHOLDER
    assert outcome["allowed"] == {"status": 200, "body": PLACEHOLDER}
    assert outcome["blocked_host"]["status"] == 403
    assert outcome["leak"]["status"] == 403
    assert outcome["placeholder_wrong_host"]["status"] == 403
    assert outcome["dns_sinkhole"]["answers"] == ["198.51.100.1"]
    assert outcome["dns_tunnel_txt"]["rcode"] == "REFUSED"
    # Default deny's steering works rootless too: the connect may complete at the
    # proxy's deny listener, nothing reaches the address, and a line says so.
    assert outcome["direct_ip"]["answered"] is False, outcome["direct_ip"]
    assert not [r for r in internet.http() if r["path"] == "/direct-ip"]
    assert outcome["websocket_leak"]["closed"] == 1008
    user.exec(
        "podman", "exec", "agentcage-basic-agent", "python3", "-c",
        "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
        f".sendto(b'ntp', ('{internet.ip}', 123))",
    )  # fmt: skip
    wanted = {(internet.ip, 443, "tcp"), (internet.ip, 123, "udp")}
    deadline = time.monotonic() + 10
    while True:
        flows = [r for r in _audit(user) if r["kind"] == "flow" and r["verdict"] == "block"]
        missing = wanted - {(r["host"], r["port"], r["scheme"]) for r in flows}
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not missing, flows


def _audit(user: RootlessUser) -> list[dict[str, Any]]:
    path = f"/home/{user.name}/.config/agentcage/deployments/basic/audit/proxy/proxy.jsonl"
    # The log belongs to the containers' sub-UID (docs/audit-log.md).
    return whole_records(user.exec("podman", "unshare", "cat", path))


def test_rootless_status_reads_the_sidecars_metrics(user: RootlessUser) -> None:
    """The sockets belong to sub-UIDs the user cannot act as; mode 0666 inside the
    user's 0700 state lets `cage status` (run as the user) read them."""
    result = user.agentcage("cage", "status", "basic", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for role in ("proxy", "dns"):
        metrics = report["metrics"][role]
        assert metrics["error"] is None, metrics
        assert metrics["policy_version"] == report["policy"]["version"]
    assert report["metrics"]["proxy"]["last_hour"]["block"] >= 3  # test_rootless_cage_holds
    health = {s["role"]: s["health"] for s in report["services"]}
    assert health["proxy"] == health["dns"] == "healthy"
    # The harness's host has cgroup v1: rootless Podman cannot set limits there, said so.
    assert report["weakened"] == [
        "no memory, CPU or pids limits: rootless Podman on cgroup v1 cannot enforce them",
        "the proxy may connect to special-purpose ranges 10.250.0.0/24 (network.allow_cidrs)",
    ]


def test_rootless_destroy_leaves_nothing(user: RootlessUser) -> None:
    result = user.agentcage("cage", "destroy", "basic", "-y")
    assert result.returncode == 0, result.stderr
    user.nothing_left("basic")

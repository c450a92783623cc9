"""One real cage on each unit path: quadlets (Debian 13, Podman 5) and plain systemd
services (Debian 12: systemd 252 and Debian's own Podman 4.3.1, which has no quadlet).

Both run the README's order (create, secret set, verify), the agent's scenarios against
the fake internet, a second `secret set` (a proxy restart: Podman 4.3's leftover cidfile
and netavark 1.4's unannounced MAC change each used to break it) and destroy, then check
that nothing is left.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import IDLE, Harness, Internet, e2e_config, start_internet
from tests.e2e.podman43 import Podman43Harness
from tests.e2e.test_cage import PLACEHOLDER, scenarios

KEY = "sk-ant-api03-p43REALvalue0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH"
OTHER_KEY = KEY.replace("p43REAL", "p43NEXT")


@pytest.fixture(scope="module", params=["podman5", "podman43"])
def host(request: pytest.FixtureRequest) -> Iterator[Harness]:
    workdir = Path(tempfile.mkdtemp(prefix=f"agentcage-{request.param}-"))
    kind = Podman43Harness if request.param == "podman43" else Harness
    harness = kind(name=f"agentcage-{request.param}-{os.getpid()}", workdir=workdir)
    harness.start()
    try:
        yield harness
    finally:
        harness.stop()


@pytest.fixture(scope="module")
def net(host: Harness) -> Internet:
    return start_internet(host)


@pytest.fixture(scope="module")
def created(host: Harness, net: Internet) -> str:
    config = e2e_config(host, IDLE)
    result = host.agentcage("cage", "create", "-c", str(config), "--upstream-ca", str(net.ca_pem))
    assert result.returncode == 0, result.stderr
    secret = host.agentcage("secret", "set", "basic", "ANTHROPIC_API_KEY", input=KEY)
    assert secret.returncode == 0, secret.stderr
    return result.stderr


def test_create_picks_the_unit_path_of_the_podman_it_finds(host: Harness, created: str) -> None:
    version = host.exec("podman", "version", "--format", "{{.Client.Version}}").strip()
    quadlets = sorted(path.name for path in host.quadlet_dir.iterdir())
    if isinstance(host, Podman43Harness):
        assert version == "4.3.1"
        assert "units: plain systemd services" in created
        services = sorted(path.name for path in host.systemd_dir.iterdir())
        assert "agentcage-basic-agent.service" in services
        assert "agentcage-basic-int-network.service" in services
        assert not quadlets
    else:
        assert int(version.split(".")[0]) >= 5
        assert "units: quadlets" in created
        assert "agentcage-basic-agent.container" in quadlets
    states = host.exec("systemctl", "is-active", "agentcage-basic-agent", "agentcage-basic-proxy")
    assert states.split() == ["active", "active"]


def test_verify_passes_every_check(host: Harness, created: str) -> None:
    result = host.agentcage("cage", "verify", "basic", "--json")
    failed = [c for c in json.loads(result.stdout) if not c["passed"]]
    assert result.returncode == 0 and not failed, failed


def test_the_cage_injects_scrubs_and_blocks(host: Harness, net: Internet, created: str) -> None:
    outcome: dict[str, Any] = scenarios(host, net)
    assert outcome["env_key"] == PLACEHOLDER
    assert outcome["allowed"] == {"status": 200, "body": PLACEHOLDER}
    arrived = [r for r in net.http() if r["path"] == "/echo-key"]
    assert arrived and KEY in json.dumps(arrived[-1]["headers"])
    assert outcome["blocked_host"]["status"] == 403
    assert outcome["leak"]["status"] == 403
    assert outcome["dns_sinkhole"]["answers"] == ["198.51.100.1"]
    assert outcome["direct_ip"]["connected"] is False
    assert not [r for r in net.http() if "attacker.example" in str(r["host"])]


def test_a_second_secret_set_restarts_the_proxy(host: Harness, net: Internet, created: str) -> None:
    result = host.agentcage("secret", "set", "basic", "ANTHROPIC_API_KEY", input=OTHER_KEY)
    assert result.returncode == 0, result.stderr
    assert "proxy restarted" in result.stdout
    assert scenarios(host, net)["allowed"] == {"status": 200, "body": PLACEHOLDER}
    assert any(OTHER_KEY in json.dumps(r.get("headers")) for r in net.http())


def test_destroy_leaves_nothing(host: Harness, created: str) -> None:
    result = host.agentcage("cage", "destroy", "basic", "-y")
    assert result.returncode == 0, result.stderr
    assert not host.exec("podman", "ps", "-a", "--filter", "label=agentcage.cage=basic", "-q")
    networks = host.exec("podman", "network", "ls", "--format", "{{.Name}}").split()
    assert not [n for n in networks if n.startswith("agentcage-basic")]
    assert "agentcage-basic" not in host.exec("podman", "secret", "ls")
    assert not list(host.quadlet_dir.iterdir())
    if isinstance(host, Podman43Harness):
        assert not list(host.systemd_dir.iterdir())
    assert not (host.config_home / "agentcage/deployments/basic").exists()
    units = host.exec("systemctl", "list-units", "--all", "--no-legend", "agentcage-basic*")
    assert not units.strip()

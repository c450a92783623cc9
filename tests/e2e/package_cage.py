"""The package-manager cage: its config, deployment, and what it recorded.

Used by tests/e2e/test_packages.py and bench/packages.
"""

from __future__ import annotations

import json
import time
from typing import Any

from agentcage.cage.steering import SELF_CHECK
from tests.e2e.harness import INTERNET_IP, INTERNET_SUBNET, Harness, Internet
from tests.e2e.package_runs import WORK
from tests.e2e.registries import CLIENT_MOUNT, HOSTS
from tests.support.audit_lines import whole_records

CAGE = "pkg"
AGENT = f"agentcage-{CAGE}-agent"


def cage_config(internet: Internet, **extra: Any) -> dict[str, Any]:
    """What a user writes for an agent that installs packages (plus the fake internet)."""
    return {
        "name": CAGE,
        "container": {
            "image": internet.image,
            "command": ["sleep", "infinity"],
            "volumes": [f"{internet.registries.client}:{CLIENT_MOUNT}:ro"],
            "tmpfs": [f"{WORK}:rw,exec,nosuid,nodev,size=1g,mode=1777"],
            "env": {"HOME": WORK},
            "read_only": False,  # apt-get install writes to /usr and /var
        },
        "domains": {"allow": list(HOSTS)},
        "dns_servers": [INTERNET_IP],
        "network": {"allow_cidrs": [INTERNET_SUBNET]},
        **extra,
    }


def deploy(harness: Harness, internet: Internet, verb: str, config: dict[str, Any]) -> None:
    path = harness.shared / f"{CAGE}.yaml"
    path.write_text(json.dumps(config, indent=2))
    target = ["create", "-c", str(path)] if verb == "create" else ["update", CAGE, "-c", str(path)]
    before = _self_checks(harness)
    result = harness.agentcage("cage", *target, "--upstream-ca", str(internet.ca_pem))
    assert result.returncode == 0, result.stderr
    # Each start of the agent leaves one refused flow in the proxy's audit, its steering
    # step's proof that the deny listener answers (steering.SELF_CHECK). It can be
    # written just after the command returns: waited for here, so a test's Window that
    # opens next does not take it for the agent's own traffic.
    deadline = time.monotonic() + 15
    while _self_checks(harness) <= before:
        assert time.monotonic() < deadline, f"no steering self-check line after cage {verb}"
        time.sleep(0.05)


def _self_checks(harness: Harness) -> int:
    return sum(1 for r in audit_records(harness, "proxy") if r.get("host") == SELF_CHECK)


def audit_records(harness: Harness, name: str) -> list[dict[str, Any]]:
    """Every whole record of the cage's `name` audit log ("proxy" or "dns") so far."""
    path = harness.config_home / f"agentcage/deployments/{CAGE}/audit/{name}/{name}.jsonl"
    return whole_records(path.read_text()) if path.exists() else []


class Window:
    """What the audit logs and the fake internet recorded from now on."""

    def __init__(self, harness: Harness, internet: Internet) -> None:
        self.harness, self.internet = harness, internet
        self.start = {name: len(audit_records(harness, name)) for name in ("proxy", "dns")}
        self.http_start = len(internet.http())

    def audit(self, name: str = "proxy") -> list[dict[str, Any]]:
        return audit_records(self.harness, name)[self.start[name] :]

    def received(self) -> list[dict[str, Any]]:
        return self.internet.http()[self.http_start :]


def in_agent(harness: Harness, script: str, user: str = "", timeout: float = 900) -> str:
    """Run a shell script in the agent as `podman exec` does; its stdout and stderr."""
    argv = ["podman", "exec", "-w", WORK, *(["-u", user] if user else []), AGENT]
    return harness.exec(*argv, "sh", "-c", f"exec 2>&1\n{script}", check=False, timeout=timeout)

"""The package-manager cage: its config, deployment, and what it recorded.

Used by tests/e2e/test_packages.py and bench/packages.
"""

from __future__ import annotations

import json
from typing import Any

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
    result = harness.agentcage("cage", *target, "--upstream-ca", str(internet.ca_pem))
    assert result.returncode == 0, result.stderr


class Window:
    """What the audit logs and the fake internet recorded from now on."""

    def __init__(self, harness: Harness, internet: Internet) -> None:
        self.harness, self.internet = harness, internet
        self.start = {name: len(self._audit(name)) for name in ("proxy", "dns")}
        self.http_start = len(internet.http())

    def _audit(self, name: str) -> list[dict[str, Any]]:
        path = self.harness.config_home / f"agentcage/deployments/{CAGE}/audit/{name}/{name}.jsonl"
        if not path.exists():
            return []
        return whole_records(path.read_text())

    def audit(self, name: str = "proxy") -> list[dict[str, Any]]:
        return self._audit(name)[self.start[name] :]

    def received(self) -> list[dict[str, Any]]:
        return self.internet.http()[self.http_start :]


def in_agent(harness: Harness, script: str, user: str = "", timeout: float = 900) -> str:
    """Run a shell script in the agent as `podman exec` does; its stdout and stderr."""
    argv = ["podman", "exec", "-w", WORK, *(["-u", user] if user else []), AGENT]
    return harness.exec(*argv, "sh", "-c", f"exec 2>&1\n{script}", check=False, timeout=timeout)

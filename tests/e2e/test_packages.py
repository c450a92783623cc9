"""Everyday package managers through a real cage, against registries served by the test.

npm, pip, uv, apt and git run inside a cage whose config is a user's: the default
inspection chain, an allowlist of the registries' real names and the test's CA. Each run
must install (or clone and push) completely, with zero blocks and zero 429s in the audit
log, every request that reached a registry audited, and every request the run needs
answered by the registry. CI runs one representative run per tool;
`AGENTCAGE_E2E_PACKAGES=full` adds the rest of tests/e2e/package_runs.py.

The last tests force a refusal (a tiny `reads` budget, a registry removed from the
allowlist) and check that the audit line and `agentcage cage logs` name the fix.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import INTERNET_IP, INTERNET_SUBNET, Harness, Internet
from tests.e2e.package_runs import FULL, PIP, REPRESENTATIVE, WORK, PackageRun
from tests.e2e.registries import CLIENT_MOUNT, HOSTS, gitrepo, pypi

CAGE = "pkg"
AGENT = f"agentcage-{CAGE}-agent"
RUNS = FULL if os.environ.get("AGENTCAGE_E2E_PACKAGES") == "full" else REPRESENTATIVE


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
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def audit(self, name: str = "proxy") -> list[dict[str, Any]]:
        return self._audit(name)[self.start[name] :]

    def received(self) -> list[dict[str, Any]]:
        return self.internet.http()[self.http_start :]


@pytest.fixture(scope="module")
def pkg_cage(harness: Harness, internet: Internet) -> Iterator[str]:
    deploy(harness, internet, "create", cage_config(internet))
    try:
        yield CAGE
    finally:
        harness.agentcage("cage", "destroy", CAGE, "-y")


@pytest.mark.parametrize("run", RUNS, ids=[r.id for r in RUNS])
def test_package_manager_runs_through_the_cage_untouched(
    harness: Harness, internet: Internet, pkg_cage: str, run: PackageRun
) -> None:
    window = Window(harness, internet)
    argv = ["podman", "exec", "-w", WORK, *(["-u", run.user] if run.user else []), AGENT]
    result = harness.exec(*argv, "sh", "-c", f"exec 2>&1\n{run.script}\necho RUN-DONE", check=False)
    assert result.rstrip().endswith("RUN-DONE"), f"{run.id} failed:\n{result[-4000:]}"
    records = [r for r in window.audit() if r["kind"] in ("http", "response", "websocket")]
    refused = [f"{r['method']} {r['host']}{r['path']}: {r['reason']}" for r in records
               if r["verdict"] == "block"]  # fmt: skip
    assert not refused, f"{run.id}: {len(refused)} refused, e.g. {refused[:5]}"
    too_many = [r for r in records if r.get("extra", {}).get("status") == 429]
    assert not too_many, too_many[:3]
    dns_blocks = [r for r in window.audit("dns") if r["verdict"] == "block"]
    assert not dns_blocks, dns_blocks[:3]
    received = window.received()
    answered = {(r["host"], r["path"]) for r in received if 200 <= int(r["status"]) < 300}
    missing = run.expected(internet.registries) - answered
    assert not missing, f"{run.id}: {len(missing)} never answered, e.g. {sorted(missing)[:5]}"
    # Every request that reached a registry was audited first, and nothing else went out.
    arrived = Counter(r["host"] for r in received)
    audited = Counter(r["host"] for r in records if r["kind"] == "http")
    assert arrived == audited, (arrived, audited)
    assert set(arrived) <= set(run.hosts), arrived
    if run.id == "git":  # the remote holds the agent's commit
        pushed = result.split("pushed ")[-1].split()[0]
        assert gitrepo.head(internet.registries.git) == pushed


def refused(harness: Harness, window: Window, run: PackageRun) -> tuple[str, list[dict[str, Any]]]:
    """Run a package manager the cage refuses something; its output and the audit's blocks."""
    out = harness.exec(
        "podman", "exec", "-w", WORK, AGENT, "sh", "-c", f"exec 2>&1\n{run.script}", check=False
    )  # fmt: skip
    return out, [r for r in window.audit() if r["verdict"] == "block"]


def proxy_log(harness: Harness) -> str:
    logs = harness.agentcage("cage", "logs", CAGE, "-s", "proxy")
    assert logs.returncode == 0, logs.stderr
    return logs.stdout


def test_a_registry_missing_from_the_allowlist_is_named_with_the_fix(
    harness: Harness, internet: Internet, pkg_cage: str
) -> None:
    removed = harness.agentcage("domain", "rm", CAGE, pypi.FILES_HOST)
    assert removed.returncode == 0, removed.stderr
    try:
        window = Window(harness, internet)
        out, blocks = refused(harness, window, PIP)
    finally:
        added = harness.agentcage("domain", "add", CAGE, pypi.FILES_HOST)
        assert added.returncode == 0, added.stderr
    assert "403" in out, out[-2000:]
    assert blocks and {(r["host"], r["inspector"]) for r in blocks} == {(pypi.FILES_HOST, "domain")}
    assert "add it to domains.allow (`agentcage domain add`)" in blocks[0]["reason"]
    assert not [r for r in window.received() if r["host"] == pypi.FILES_HOST]
    told = [line for line in proxy_log(harness).splitlines() if f"GET {pypi.FILES_HOST}/" in line]
    assert told and "(domain): " in told[-1] and "domains.allow" in told[-1], told


def test_a_429_names_the_budget_and_the_key_to_raise(
    harness: Harness, internet: Internet, pkg_cage: str
) -> None:
    # Last in the module: the cage is redeployed with a `reads` budget pip cannot fit in.
    tight = cage_config(internet, rate_limit={"reads": {"per_second": 5, "burst": 10}})
    deploy(harness, internet, "update", tight)
    window = Window(harness, internet)
    out, blocks = refused(harness, window, PIP)
    hosts = {pypi.INDEX_HOST, pypi.FILES_HOST}  # one budget each
    assert blocks and {r["host"] for r in blocks} <= hosts
    assert {tuple(r["rules"]) for r in blocks} == {("rate-limit:reads",)}
    for block in blocks:
        assert f"(burst 10) to {block['host']}; " in block["reason"]
        assert "raise rate_limit.reads.per_second or .burst" in block["reason"]
    told = [line for line in proxy_log(harness).splitlines() if "(rate-limit): " in line]
    assert told and "raise rate_limit.reads.per_second" in told[0], told
    # No refused request reached the index, and pip (urllib3) honoured Retry-After:
    # it waited and asked again, so the install still completed, only slower.
    allowed = [r for r in window.audit() if r["kind"] == "http" and r["verdict"] == "allow"]
    assert Counter(r["host"] for r in window.received()) == Counter(r["host"] for r in allowed)
    assert "Successfully installed" in out, out[-2000:]

"""A microVM cage (`isolation: firecracker`, QEMU microvm under TCG here) from examples/basic.

One cage for the module (a guest under TCG takes minutes to bring up): created through
the CLI in the session's `agentcage host start` host, its agent a standard-library script
(tests/e2e/vm_agent/agent.py) that tries each way out once at its start and reports. The
same exfiltration checks as test_cage.py, then `cage verify` inside the guest, a live
`domain add` and `secret set`, `cage status` from the guest, stop and start, `cage
update` with a changed config (a named volume keeping what the agent wrote through all
of them), and destroy leaving nothing: no VM process, socket, drive, volume, unit or state.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.e2e.conftest import REAL_KEY
from tests.e2e.harness import INTERNET_IP, REPO, Harness, Internet, nothing_left
from tests.support.audit_lines import whole_records

NAME = "basicvm"
PLACEHOLDER = "{{ANTHROPIC_API_KEY}}"
ROTATED = "sk-ant-api03-e2eROTATEDvalue0123456789abcdefghijklmnopqrstuvwxyzABCD"


def vm_config(harness: Harness) -> str:
    yaml = YAML(typ="safe")
    data = yaml.load((REPO / "examples/basic/config.yaml").read_text())
    data["name"] = NAME
    data["isolation"] = "firecracker"
    data["firecracker"] = {"vcpus": 1, "mem_mb": 1024}
    data["container"]["command"] = ["python3", "/e2e/agent.py", INTERNET_IP]
    data["container"]["volumes"] = [
        f"{REPO}/examples/basic/agent:/app:ro",
        f"{REPO}/tests/e2e/vm_agent:/e2e:ro",
    ]
    # A named volume: a writable drive of its own in the guest, kept across boots.
    data["container"]["named_volumes"] = {"data": "/data"}
    data["dns_servers"] = [INTERNET_IP]
    data["network"] = {"allow_cidrs": [f"{INTERNET_IP}/32"]}
    path = harness.shared / f"{NAME}.yaml"
    path.write_text(json.dumps(data, indent=2))
    return str(path)


def agentcage(harness: Harness, *args: str, input: str | None = None) -> str:
    began = time.monotonic()
    result = harness.agentcage(*args, input=input)
    print(f"agentcage {' '.join(args[:2])}: {time.monotonic() - began:.1f} s")
    if args[:2] == ("cage", "create"):
        print(result.stderr)  # its progress: image builds, guest image, start
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def agent_log(harness: Harness, marker: str, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while True:
        log = agentcage(harness, "cage", "logs", NAME, "-s", "agent")
        if marker in log or time.monotonic() > deadline:
            return log
        time.sleep(5)


def arrivals(internet: Internet, **headers: str) -> list[dict[str, Any]]:
    """This cage's requests at the fake internet (its agent marks each with x-vm)."""
    return [
        r
        for r in internet.http()
        if r["headers"].get("x-vm") == "1"  # type: ignore[union-attr]
        and all(r["headers"].get(k) == v for k, v in headers.items())  # type: ignore[union-attr]
    ]


@pytest.fixture(scope="module")
def vm_cage(harness: Harness, internet: Internet) -> Iterator[str]:
    config = vm_config(harness)
    try:
        agentcage(harness, "cage", "create", "-c", config, "--upstream-ca", str(internet.ca_pem))
        unit = f"agentcage-{NAME}-vm.service"  # its boot and cage-up times, for the record
        print(harness.exec("journalctl", "-u", unit, "-o", "cat", "--no-pager", check=False))
        agentcage(harness, "secret", "set", NAME, "ANTHROPIC_API_KEY", input=REAL_KEY)
        yield NAME
    finally:
        harness.agentcage("cage", "destroy", NAME, "-y")


def test_a_microvm_cage_holds_and_its_lifecycle_works(
    harness: Harness, internet: Internet, vm_cage: str
) -> None:
    # The agent's report of its first round (it waits for the key, set after create).
    log = agent_log(harness, "RESULTS ")
    line = next(line for line in log.splitlines() if line.startswith("RESULTS "))
    outcome = json.loads(line.removeprefix("RESULTS "))
    assert outcome["env_key"] == PLACEHOLDER
    assert outcome["volume"] == {"before": [], "owner": 1000}, outcome["volume"]
    assert outcome["allowed"]["status"] == 200, outcome["allowed"]
    assert outcome["blocked_host"]["status"] == 403, outcome["blocked_host"]
    assert outcome["leak"]["status"] == 403 and outcome["placeholder_wrong_host"]["status"] == 403
    assert outcome["dns_sinkhole"]["answers"] == ["198.51.100.1"], outcome["dns_sinkhole"]
    assert outcome["dns_tunnel_txt"]["rcode"] == "REFUSED", outcome["dns_tunnel_txt"]
    # Default deny: the connect may complete at the guest proxy's deny listener, nothing
    # reaches the address, and a `flow` line says so (checked below, on the host).
    assert outcome["direct_ip"]["answered"] is False, outcome["direct_ip"]
    # Injection toward the allowed host, redaction on the way back.
    deadline = time.monotonic() + 120
    while not arrivals(internet, **{"x-api-key": REAL_KEY}):
        assert time.monotonic() < deadline, internet.http()[-3:]
        time.sleep(3)
    assert REAL_KEY not in log
    mine = arrivals(internet)
    assert not [r for r in mine if r["host"] in ("attacker.example", "api.openai.com")]
    assert not [r for r in mine if r["path"] in ("/upload", "/steal")]
    assert "vm-exfil.attacker.example" not in json.dumps(internet.dns())
    assert "attacker.example" in agentcage(harness, "cage", "logs", NAME, "-s", "proxy")
    # The guest's audit lines are copied to the host's audit file, as a container cage's.
    audit = harness.config_home / "agentcage/deployments" / NAME / "audit/proxy/proxy.jsonl"
    deadline = time.monotonic() + 30
    while not [r for r in whole_records(audit.read_text()) if r["host"] == "attacker.example"]:
        assert time.monotonic() < deadline, audit.read_text()[-1000:]
        time.sleep(2)
    assert REAL_KEY not in audit.read_text()
    direct = [
        r
        for r in whole_records(audit.read_text())
        if r["kind"] == "flow" and (r["host"], r["port"], r["scheme"]) == (INTERNET_IP, 443, "tcp")
    ]
    assert direct and direct[-1]["verdict"] == "block", outcome["direct_ip"]
    assert not [r for r in mine if r["path"] == "/direct-ip"]

    listed = json.loads(agentcage(harness, "cage", "list", "--json"))
    assert [row["state"] for row in listed if row["name"] == NAME] == ["active"], listed

    checks = json.loads(agentcage(harness, "cage", "verify", NAME, "--json"))
    assert not [c for c in checks if not c["passed"]], checks
    names = {c["name"] for c in checks}
    assert {"no direct route out", "unlisted name sinkholed", "allowlisted host reachable"} <= names
    # Default deny in the guest, judged as in container mode (each flow with its line).
    deny = {"agent routes via the proxy", "proxy does not forward", "raw TCP to port 22 refused"}
    assert deny | {"raw TCP to port 5432 refused", "UDP to port 123 unanswered"} <= names
    # `cage status` asks the guest for each role (exit 3 if one had died there).
    status = json.loads(agentcage(harness, "cage", "status", NAME, "--json"))
    roles = {s["role"]: s["state"] for s in status["services"]}
    assert status["healthy"] and roles == dict.fromkeys(("vm", "dns", "proxy", "agent"), "active")

    agentcage(harness, "domain", "add", NAME, "api.openai.com")
    assert "LATER reached" in agent_log(harness, "LATER reached", 180)
    assert arrivals(internet) and [r for r in arrivals(internet) if r["path"] == "/vm-later"]

    agentcage(harness, "secret", "set", NAME, "ANTHROPIC_API_KEY", input=ROTATED)
    deadline = time.monotonic() + 120
    while not arrivals(internet, **{"x-api-key": ROTATED}):
        assert time.monotonic() < deadline, internet.http()[-3:]
        time.sleep(3)

    # Stop is the guest's shutdown; start boots it again with the stored secret.
    agentcage(harness, "cage", "stop", NAME)
    assert "qemu-system" not in harness.exec("ps", "-eo", "args")
    agentcage(harness, "cage", "start", NAME)  # returns once the cage in the guest is up
    again = agent_log(harness, "RESULTS ")
    line = next(line for line in again.splitlines() if line.startswith("RESULTS "))
    outcome = json.loads(line.removeprefix("RESULTS "))
    assert outcome["allowed"]["status"] == 200, again
    assert outcome["volume"]["before"] == ["1 "], outcome["volume"]  # the first boot's

    # `cage update` with a changed config (the agent's command, a second secret): new
    # drives and plan, and the guest boots again with them.
    data = json.loads(Path(vm_config(harness)).read_text())
    data["container"]["command"].append("updated")
    data["secret_injection"].append({"env": "GITHUB_TOKEN", "inject_to": ["github.com"]})
    changed = harness.shared / f"{NAME}-updated.yaml"
    changed.write_text(json.dumps(data, indent=2))
    agentcage(harness, "cage", "update", NAME, "-c", str(changed))
    updated = agent_log(harness, "RESULTS ")
    line = next(line for line in updated.splitlines() if line.startswith("RESULTS "))
    outcome = json.loads(line.removeprefix("RESULTS "))
    assert outcome["argv"] == ["updated"] and outcome["allowed"]["status"] == 200, updated
    assert {"ANTHROPIC_API_KEY", "GITHUB_TOKEN"} <= set(outcome["placeholders"]), updated
    assert outcome["volume"]["before"] == ["1 ", "2 "], outcome["volume"]
    volume = harness.config_home / "agentcage/deployments" / NAME / "vm/volumes/data.ext4"
    assert volume.is_file()  # removed with the state by destroy, as Podman's volumes are

    state = harness.config_home / "agentcage/deployments" / NAME
    agentcage(harness, "cage", "destroy", NAME, "-y")
    nothing_left(harness, NAME)
    assert not state.exists()
    assert "qemu-system" not in harness.exec("ps", "-eo", "args")

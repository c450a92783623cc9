"""A microVM cage (`isolation: firecracker`, QEMU microvm under TCG here) from examples/basic.

One cage for the module (a guest under TCG takes minutes to bring up): created through
the CLI in the session's `agentcage host start` host, its agent a standard-library script
(tests/e2e/vm_agent/agent.py) that tries each way out once at its start and reports. The
same exfiltration checks as test_cage.py, then `cage verify` inside the guest, a live
`domain add` and `secret set`, `cage status` from the guest, stop and start, `cage
update` with a changed config (a named volume keeping what the agent wrote through all
of them, and a workspace shared live with the host through virtiofs), and destroy
leaving nothing: no VM process, socket, drive, volume, unit or state.

With AGENTCAGE_MICROVM_ROOTLESS=1 the same test runs a second time, the cage made by an
unprivileged user with rootless Podman under `systemd --user` (docs/microvm.md, "Rootless");
it costs a second TCG cage (minutes), so CI runs the rootful case only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from agentcage.cage.images import AGENT_DEBIAN_IMAGE, AGENT_DEBIAN_PACKAGES, ImageBuilder
from agentcage.cage.podman import SubprocessRunner
from agentcage.cage.vm.guest_image import build_guest
from agentcage.cage.vm.vm_container import ROOTLESS_NOTE
from agentcage.cage.vm.vm_image import vm_image
from tests.e2e.conftest import REAL_KEY
from tests.e2e.harness import (
    BUILD_ENV,
    INTERNET_IP,
    REPO,
    Harness,
    Internet,
    RootlessUser,
    nothing_left,
    run,
)
from tests.support.audit_lines import whole_records

NAME = "basicvm"
PLACEHOLDER = "{{ANTHROPIC_API_KEY}}"
ROTATED = "sk-ant-api03-e2eROTATEDvalue0123456789abcdefghijklmnopqrstuvwxyzABCD"
ROOTLESS = os.environ.get("AGENTCAGE_MICROVM_ROOTLESS") == "1"


@dataclass
class Rootful:
    """The cage's owner: root, through the session's host (its CLI runs on this machine)."""

    harness: Harness

    def agentcage(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.harness.agentcage(*args, input=input)

    def journal(self) -> str:
        unit = f"agentcage-{NAME}-vm.service"
        return self.harness.exec("journalctl", "-u", unit, "-o", "cat", "--no-pager", check=False)

    def audit(self) -> str:
        return self.harness.audit_text(NAME, "proxy")

    def has_state_file(self, relative: str) -> bool:
        return (self.harness.config_home / "agentcage/deployments" / NAME / relative).is_file()

    def nothing_left(self) -> None:
        nothing_left(self.harness, NAME)


@dataclass
class Rootless:
    """The cage's owner: an unprivileged user in the host, rootless Podman, systemd --user."""

    user: RootlessUser

    def agentcage(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.user.agentcage(*args, input=input)

    def journal(self) -> str:
        return self.user.harness.exec(
            "journalctl", "--no-pager", "-o", "cat", f"_UID={self.user.uid}", "-n", "80",
            check=False,
        )  # fmt: skip

    def audit(self) -> str:
        state = f"/home/{self.user.name}/.config/agentcage/deployments/{NAME}"
        # The `:U` mount gave it to the container's sub-UID (docs/audit-log.md).
        return self.user.exec("podman", "unshare", "cat", f"{state}/audit/proxy/proxy.jsonl")

    def has_state_file(self, relative: str) -> bool:
        state = f"~/.config/agentcage/deployments/{NAME}"
        return "yes" in self.user.exec("sh", "-c", f"test -f {state}/{relative} && echo yes; true")

    def nothing_left(self) -> None:
        self.user.nothing_left(NAME)


Owner = Rootful | Rootless


def rootless_owner(harness: Harness) -> Rootless:
    """A second user in the host (test_rootless.py has the first), given what root built
    here: the VM's and the agent's images, and the guest image as a seeded cache."""
    builder = ImageBuilder(SubprocessRunner(env=BUILD_ENV))
    agent = builder.debian_image("agentcage-agent-debian", AGENT_DEBIAN_PACKAGES)
    images = [vm_image(builder), agent]
    guest = build_guest()
    cache = harness.shared / "vm-cache"
    for part in (guest.kernel.parent, guest.root):
        copy = cache / part.name
        shutil.copytree(part, copy) if part.is_dir() else shutil.copyfile(part, copy)
    user = harness.add_user("vmcage", 1001)
    run(["chown", "-R", f"{user.uid}:{user.uid}", str(cache)])
    user.env["AGENTCAGE_VM_CACHE"] = str(cache)
    user.load_images(images)
    user.exec("podman", "tag", agent, AGENT_DEBIAN_IMAGE)
    return Rootless(user)


def workspace(harness: Harness) -> Path:
    return harness.shared / f"{NAME}-workspace"


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
        # Writable: shared live with the host (virtiofs), given to the VM container's user.
        f"{workspace(harness)}:/workspace",
    ]
    # A named volume: a writable drive of its own in the guest, kept across boots.
    data["container"]["named_volumes"] = {"data": "/data"}
    data["dns_servers"] = [INTERNET_IP]
    data["network"] = {"allow_cidrs": [f"{INTERNET_IP}/32"]}
    path = harness.shared / f"{NAME}.yaml"
    path.write_text(json.dumps(data, indent=2))
    path.chmod(0o644)  # a rootless owner reads it too
    return str(path)


def workspace_owner(owner: Owner) -> int:
    """Who owns what the agent writes there, on the host: the VM container's user (uid
    10000 rootful; the user, through keep-id, rootless); docs/microvm.md, Volumes."""
    return 10000 if isinstance(owner, Rootful) else owner.user.uid


def agentcage(owner: Owner, *args: str, input: str | None = None) -> str:
    began = time.monotonic()
    result = owner.agentcage(*args, input=input)
    print(f"agentcage {' '.join(args[:2])}: {time.monotonic() - began:.1f} s")
    if args[:2] == ("cage", "create"):
        print(result.stderr)  # its progress: image builds, guest image, start
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def agent_log(owner: Owner, marker: str, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while True:
        log = agentcage(owner, "cage", "logs", NAME, "-s", "agent")
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


@pytest.fixture(scope="module", params=["rootful", *(["rootless"] if ROOTLESS else [])])
def owner(request: pytest.FixtureRequest, harness: Harness, internet: Internet) -> Iterator[Owner]:
    """The cage, created by its owner with the key set; destroyed after whatever happened."""
    who: Owner = Rootful(harness) if request.param == "rootful" else rootless_owner(harness)
    shared = workspace(harness)
    shutil.rmtree(shared, ignore_errors=True)
    shared.mkdir()
    (shared / "from-host.txt").write_text("from the host\n")
    uid = workspace_owner(who)
    run(["chown", "-R", f"{uid}:{uid}", str(shared)])
    config = vm_config(harness)
    ca = harness.shared / "internet-ca.pem"
    shutil.copy(internet.ca_pem, ca)
    ca.chmod(0o644)
    try:
        agentcage(who, "cage", "create", "-c", config, "--upstream-ca", str(ca))
        print(who.journal())  # its boot and cage-up times, for the record
        agentcage(who, "secret", "set", NAME, "ANTHROPIC_API_KEY", input=REAL_KEY)
        yield who
    finally:
        who.agentcage("cage", "destroy", NAME, "-y")


def test_a_microvm_cage_holds_and_its_lifecycle_works(
    harness: Harness, internet: Internet, owner: Owner
) -> None:
    # The agent's report of its first round (it waits for the key, set after create).
    log = agent_log(owner, "RESULTS ")
    line = next(line for line in log.splitlines() if line.startswith("RESULTS "))
    outcome = json.loads(line.removeprefix("RESULTS "))
    assert outcome["env_key"] == PLACEHOLDER
    assert outcome["volume"] == {"before": [], "owner": 1000}, outcome["volume"]
    # The workspace: the host's file read live, the agent's own file its uid in the guest
    # and the VM container's user's on the host, and `:ro` still read-only.
    shared = outcome["workspace"]
    assert shared["host_file"] == "from the host\n" and shared["owner"] == 1000, shared
    assert shared["ro_write"] == "EROFS", shared
    written = workspace(harness) / "by-agent.txt"
    assert written.read_text() == "start \n"
    assert (written.stat().st_uid, written.stat().st_gid) == (workspace_owner(owner),) * 2
    assert (workspace(harness) / "agent-dir-1").is_dir()
    # Both ways while the cage runs: the host's `ping`, the agent's `pong`.
    (workspace(harness) / "ping").write_text("live\n")
    deadline = time.monotonic() + 60
    while not (workspace(harness) / "pong").exists():
        assert time.monotonic() < deadline, agentcage(owner, "cage", "logs", NAME, "-s", "agent")
        time.sleep(2)
    assert (workspace(harness) / "pong").read_text() == "pong live\n"
    if outcome["allowed"].get("status") != 200:  # what the guest's proxy saw, to tell why
        seen = [log[-3000:]]
        for args in (("logs", NAME, "-s", "proxy"), ("verify", NAME), ("status", NAME)):
            shown = owner.agentcage("cage", *args)
            seen.append(f"--- cage {args[0]} ---\n{shown.stdout[-3000:]}{shown.stderr[-1000:]}")
        raise AssertionError("\n".join(seen))
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
    assert "attacker.example" in agentcage(owner, "cage", "logs", NAME, "-s", "proxy")
    # The guest's audit lines are copied to the host's audit file, as a container cage's.
    deadline = time.monotonic() + 30
    while not [r for r in whole_records(owner.audit()) if r["host"] == "attacker.example"]:
        assert time.monotonic() < deadline, owner.audit()[-1000:]
        time.sleep(2)
    audit = owner.audit()
    assert REAL_KEY not in audit
    direct = [
        r
        for r in whole_records(audit)
        if r["kind"] == "flow" and (r["host"], r["port"], r["scheme"]) == (INTERNET_IP, 443, "tcp")
    ]
    assert direct and direct[-1]["verdict"] == "block", outcome["direct_ip"]
    assert not [r for r in mine if r["path"] == "/direct-ip"]

    listed = json.loads(agentcage(owner, "cage", "list", "--json"))
    assert [row["state"] for row in listed if row["name"] == NAME] == ["active"], listed

    checks = json.loads(agentcage(owner, "cage", "verify", NAME, "--json"))
    assert not [c for c in checks if not c["passed"]], checks
    names = {c["name"] for c in checks}
    assert {"no direct route out", "unlisted name sinkholed", "allowlisted host reachable"} <= names
    # Default deny in the guest, judged as in container mode (each flow with its line).
    deny = {"agent routes via the proxy", "proxy does not forward", "raw TCP to port 22 refused"}
    assert deny | {"raw TCP to port 5432 refused", "UDP to port 123 unanswered"} <= names
    # `cage status` asks the guest for each role (exit 3 if one had died there).
    status = json.loads(agentcage(owner, "cage", "status", NAME, "--json"))
    roles = {s["role"]: s["state"] for s in status["services"]}
    assert status["healthy"] and roles == dict.fromkeys(("vm", "dns", "proxy", "agent"), "active")
    # What a rootless microVM cage gives up, said where its owner looks.
    assert (ROOTLESS_NOTE in status["weakened"]) is isinstance(owner, Rootless), status

    agentcage(owner, "domain", "add", NAME, "api.openai.com")
    assert "LATER reached" in agent_log(owner, "LATER reached", 180)
    assert arrivals(internet) and [r for r in arrivals(internet) if r["path"] == "/vm-later"]

    agentcage(owner, "secret", "set", NAME, "ANTHROPIC_API_KEY", input=ROTATED)
    deadline = time.monotonic() + 120
    while not arrivals(internet, **{"x-api-key": ROTATED}):
        assert time.monotonic() < deadline, internet.http()[-3:]
        time.sleep(3)

    # Stop is the guest's shutdown; start boots it again with the stored secret.
    agentcage(owner, "cage", "stop", NAME)
    assert "qemu-system" not in harness.exec("ps", "-eo", "args")
    agentcage(owner, "cage", "start", NAME)  # returns once the cage in the guest is up
    again = agent_log(owner, "RESULTS ")
    line = next(line for line in again.splitlines() if line.startswith("RESULTS "))
    outcome = json.loads(line.removeprefix("RESULTS "))
    assert outcome["allowed"]["status"] == 200, again
    assert outcome["volume"]["before"] == ["1 "], outcome["volume"]  # the first boot's
    assert {"ping", "pong", "by-agent.txt"} <= set(outcome["workspace"]["listing"])

    # `cage update` with a changed config (the agent's command, a second secret): new
    # drives and plan, and the guest boots again with them.
    data = json.loads(Path(vm_config(harness)).read_text())
    data["container"]["command"].append("updated")
    data["secret_injection"].append({"env": "GITHUB_TOKEN", "inject_to": ["github.com"]})
    changed = harness.shared / f"{NAME}-updated.yaml"
    changed.write_text(json.dumps(data, indent=2))
    changed.chmod(0o644)
    agentcage(owner, "cage", "update", NAME, "-c", str(changed))
    updated = agent_log(owner, "RESULTS ")
    line = next(line for line in updated.splitlines() if line.startswith("RESULTS "))
    outcome = json.loads(line.removeprefix("RESULTS "))
    assert outcome["argv"] == ["updated"] and outcome["allowed"]["status"] == 200, updated
    assert {"ANTHROPIC_API_KEY", "GITHUB_TOKEN"} <= set(outcome["placeholders"]), updated
    assert outcome["volume"]["before"] == ["1 ", "2 "], outcome["volume"]
    # Removed with the state by destroy, as Podman's volumes are.
    assert owner.has_state_file("vm/volumes/data.ext4")

    agentcage(owner, "cage", "destroy", NAME, "-y")
    owner.nothing_left()
    # The workspace is the user's: destroy leaves it, with what the agent wrote.
    assert (workspace(harness) / "by-agent.txt").read_text().count("start") == 3
    assert "qemu-system" not in harness.exec("ps", "-eo", "args")

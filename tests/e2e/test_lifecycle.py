"""A cage's lifecycle under real systemd + Podman 5 (issue 12, findings 4 to 7 and 9).

Each test deploys a cage of its own (examples/basic under another name, no published
port) next to the session's `basic`, and ends by proving that destroy left nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentcage.cage.images import ImageBuilder
from agentcage.cage.podman import SubprocessRunner
from tests.e2e.conftest import REAL_KEY
from tests.e2e.harness import (
    BUILD_ENV,
    IDLE,
    REPO,
    Harness,
    Internet,
    e2e_config,
    key_arrived,
    nothing_left,
    remove_orphans,
)
from tests.support.registry import LocalRegistry, PodmanEnv, local_registry

# examples/basic's own agent, one round every 3 seconds instead of every minute.
LOOP = ["python3", "/app/agent.py", "--every", "3"]


def _config(harness: Harness, name: str, command: list[str]) -> Path:
    data = json.loads(e2e_config(harness, IDLE).read_text())
    data["name"] = name
    data["container"]["command"] = command
    del data["container"]["ports"]  # one published port for the whole harness
    path = harness.shared / f"{name}.yaml"
    path.write_text(json.dumps(data, indent=2))
    return path


def _agentcage(
    harness: Harness, *args: str, input: str | None = None, **env: str | None
) -> subprocess.CompletedProcess[str]:
    """`agentcage` as harness.agentcage runs it, with variables changed (None removes)."""
    environ = harness.env()
    for key, value in env.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return subprocess.run(
        [str(REPO / ".venv" / "bin" / "agentcage"), *args],
        capture_output=True,
        text=True,
        env=environ,
        input=input,
        timeout=900,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _state(harness: Harness, name: str) -> str:
    (row,) = [
        r for r in json.loads(_ok(harness.agentcage("cage", "list", "--json"))) if r["name"] == name
    ]
    return str(row["state"])


def _started(harness: Harness, container: str) -> str:
    return harness.exec("podman", "inspect", "--format", "{{.State.StartedAt}}", container)


def test_readme_order_with_the_looping_agent(harness: Harness, internet: Internet) -> None:
    """create (--base debian) -> secret set -> verify -> update -> stop -> start -> restart."""
    config = str(_config(harness, "loop", LOOP))
    ca = str(internet.ca_pem)
    no_default = {"AGENTCAGE_IMAGE_BASE": None}  # the base comes from the flag, then the record
    created = _agentcage(harness, "cage", "create", "-c", config, "--base", "debian",
                         "--upstream-ca", ca, **no_default)  # fmt: skip
    try:
        assert "cage loop is running" in _ok(created)
        assert _state(harness, "loop") == "active"
        seen = len(internet.http())
        said = _ok(harness.agentcage("secret", "set", "loop", "ANTHROPIC_API_KEY", input=REAL_KEY))
        assert "restarted agentcage-loop-proxy.service" in said
        verified = harness.agentcage("cage", "verify", "loop", "--json")
        failed = [c for c in json.loads(verified.stdout) if not c["passed"]]
        assert verified.returncode == 0 and not failed, failed
        assert key_arrived(internet, seen, REAL_KEY), "the agent's next round got no real key"
        # Finding 5: update without --base or --upstream-ca keeps both.
        updated = _agentcage(harness, "cage", "update", "loop", **no_default)
        assert "cage loop is running" in _ok(updated)
        assert "docker.io" not in updated.stderr
        seen = len(internet.http())
        assert key_arrived(internet, seen, REAL_KEY), "after update the upstream CA was gone"
        # Finding 6: stop, start, restart.
        assert "cage loop stopped" in _ok(harness.agentcage("cage", "stop", "loop"))
        assert _state(harness, "loop") == "inactive"
        running = harness.exec("podman", "ps", "--filter", "label=agentcage.cage=loop", "-q")
        assert not running.strip()
        assert "cage loop is running" in _ok(harness.agentcage("cage", "start", "loop"))
        before = _started(harness, "agentcage-loop-proxy")
        assert "cage loop is running" in _ok(harness.agentcage("cage", "restart", "loop"))
        assert _started(harness, "agentcage-loop-proxy") != before
        logs = _ok(harness.agentcage("cage", "logs", "loop", "-s", "agent"))
        assert "[allowed: Anthropic API with placeholder] 200" in logs
    finally:
        destroyed = harness.agentcage("cage", "destroy", "loop", "-y")
    assert destroyed.returncode == 0, destroyed.stderr
    nothing_left(harness, "loop")


def test_secret_set_reaches_the_proxy_after_the_agent_exited(
    harness: Harness, internet: Internet
) -> None:
    config = str(_config(harness, "once", ["python3", "/app/agent.py", "--once"]))
    created = harness.agentcage(
        "cage", "create", "-c", config, "--upstream-ca", str(internet.ca_pem)
    )
    try:
        # The agent starts the moment its sidecars are ready, so `create` may return while
        # it still makes its calls or is exiting (the line names the state it saw); then it
        # exits by itself.
        assert _ok(created).startswith("cage once ")
        deadline = time.monotonic() + 120
        while _state(harness, "once") != "inactive" and time.monotonic() < deadline:
            time.sleep(1)
        assert _state(harness, "once") == "inactive"
        # The container is gone (--rm); the unit's last invocation stays.
        invocation = ["systemctl", "show", "--property=InvocationID", "agentcage-once-agent"]
        agent_ran = harness.exec(*invocation)
        said = _ok(harness.agentcage("secret", "set", "once", "ANTHROPIC_API_KEY", input=REAL_KEY))
        assert "restarted agentcage-once-proxy.service" in said
        mounted = harness.exec(
            "podman", "exec", "agentcage-once-proxy", "ls", "/run/secrets/agentcage"
        )
        assert mounted.split() == ["ANTHROPIC_API_KEY"]
        assert harness.exec(*invocation) == agent_ran  # not started again
        assert _state(harness, "once") == "inactive"
    finally:
        destroyed = harness.agentcage("cage", "destroy", "once", "-y")
    assert destroyed.returncode == 0, destroyed.stderr
    nothing_left(harness, "once")


def test_destroy_never_forgets_a_cage_it_cannot_reach(harness: Harness, internet: Internet) -> None:
    config = str(_config(harness, "lost", IDLE))
    _ok(harness.agentcage("cage", "create", "-c", config, "--upstream-ca", str(internet.ca_pem)))
    elsewhere = harness.unreachable()
    try:
        kept = _agentcage(harness, "cage", "destroy", "lost", "-y", **elsewhere)
        assert kept.returncode == 1 and "destroyed" not in kept.stdout
        assert "cannot reach systemd" in kept.stderr
        assert (harness.config_home / "agentcage/deployments/lost").is_dir()
        assert harness.unit_files("agentcage-lost-*")
        assert (
            harness.exec("systemctl", "is-active", "agentcage-lost-agent.service").strip()
            == "active"
        )
        listed = _agentcage(harness, "cage", "list", **elsewhere)
        assert listed.returncode == 1 and "unreachable" in listed.stdout
        logs = _agentcage(harness, "cage", "logs", "lost", **elsewhere)
        assert logs.returncode == 1 and "cannot reach systemd" in logs.stderr
    finally:
        destroyed = harness.agentcage("cage", "destroy", "lost", "-y")
    assert destroyed.returncode == 0, destroyed.stderr
    nothing_left(harness, "lost")
    again = harness.agentcage("cage", "destroy", "lost", "-y")
    assert again.returncode == 1 and "no cage named 'lost'" in again.stderr
    assert harness.agentcage("cage", "destroy", "lost", "--missing-ok").returncode == 0


@dataclass(frozen=True)
class Registry:
    running: LocalRegistry
    podman: PodmanEnv  # the host's own image store: the harness reads images from there
    workdir: Path


@pytest.fixture
def registry() -> Iterator[Registry]:
    with tempfile.TemporaryDirectory(prefix="agentcage-e2e-registry-") as tmp:
        workdir = Path(tmp)
        with local_registry(workdir) as running:
            podman = PodmanEnv.make(workdir, running, BUILD_ENV, own_storage=False)
            yield Registry(running, podman, workdir)


def _base_of_this_run(registry: Registry) -> str:
    """The Debian base under a new label, pushed; returns it pinned by digest.

    Podman finds a pinned image by its digest alone, whatever the name: a base pushed in
    an earlier run would be found locally and not pulled. This one's digest is new, and
    the local copy is untagged after the push, so `create` has to pull it.
    """
    debian = ImageBuilder(SubprocessRunner(env=BUILD_ENV)).base("debian")
    (registry.workdir / "Containerfile").write_text(
        f"FROM {debian}\nLABEL agentcage.e2e.run={uuid.uuid4().hex}\n"
    )
    local = f"localhost/agentcage-e2e-base:{uuid.uuid4().hex[:12]}"
    registry.podman.run(
        "podman", "build", "--quiet", "--pull=never", "-t", local, str(registry.workdir)
    )
    target = f"{registry.running.address}/agentcage/base:bookworm"
    pinned = f"{target}@{registry.podman.push(local, target)}"
    registry.podman.remove([local])
    return pinned


def test_create_with_a_registry_base_pinned_by_digest(
    harness: Harness, internet: Internet, registry: Registry
) -> None:
    pinned = _base_of_this_run(registry)
    env: dict[str, Any] = {
        "AGENTCAGE_REGISTRY_BASE": pinned,
        "CONTAINERS_REGISTRIES_CONF": registry.podman.env["CONTAINERS_REGISTRIES_CONF"],
    }
    config = str(_config(harness, "reg", IDLE))
    created = _agentcage(harness, "cage", "create", "-c", config, "--base", "registry",
                         "--upstream-ca", str(internet.ca_pem), **env)  # fmt: skip
    try:
        _ok(created)
        assert f"pulling {pinned}" in created.stderr
        assert "Writing manifest" in created.stderr  # podman's progress, not --quiet
        recorded = json.loads(
            (harness.config_home / "agentcage/deployments/reg/create-options.json").read_text()
        )
        assert recorded == {"base": pinned}
        # The record, not the variable, decides: update without it keeps the pinned base.
        updated = _agentcage(
            harness, "cage", "update", "reg", **{**env, "AGENTCAGE_REGISTRY_BASE": None}
        )
        _ok(updated)
        assert "docker.io" not in updated.stderr
        assert _state(harness, "reg") == "active"
    finally:
        ours = [pinned]
        if (harness.config_home / "agentcage/deployments/reg/images.json").exists():
            # Built on this run's own base, so nothing else uses them; all present, so
            # this only names them.
            built = ImageBuilder(SubprocessRunner(env=BUILD_ENV)).sidecar_images(pinned)
            ours = [built.proxy, built.dns, built.runtime, pinned]
        destroyed = harness.agentcage("cage", "destroy", "reg", "-y")
        registry.podman.remove(ours)
    assert destroyed.returncode == 0, destroyed.stderr
    nothing_left(harness, "reg")


def test_a_harness_whose_run_died_is_removed_and_a_live_runs_kept(harness: Harness) -> None:
    finished = subprocess.Popen(["true"])
    finished.wait()
    orphan = f"agentcage-orphantest-{finished.pid}"
    # The parent of this pytest is alive: its harness belongs to a run still going.
    kept = f"agentcage-orphantest-{os.getppid()}"
    for name in (orphan, kept):
        subprocess.run(["podman", "create", "--name", name, harness.image], check=True,
                       capture_output=True)  # fmt: skip
    try:
        assert remove_orphans("orphantest") == [orphan]
        names = subprocess.run(
            ["podman", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True
        ).stdout.split()
        assert orphan not in names and kept in names
    finally:
        # One name per call: Podman 4.3's `rm -f` stops at a name already gone.
        for name in (orphan, kept):
            subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True)

"""A `cage create --host` that fails half-way is rolled back on the target, then here.

The target's systemd and Podman are the recording fake (fakes.FakeSystemdPodman); its
files are real files in a directory standing for the target's disk, written through the
same one-string shell commands ssh would carry (ssh_fakes.ShellRunner).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from agentcage.cage import remote_hosts
from agentcage.cage.host_files import RemoteFiles
from agentcage.cage.lifecycle import Cages
from agentcage.cage.podman import Completed, PodmanHost
from agentcage.cage.remote_hosts import CAGE_RECORD, RemoteHosts
from agentcage.cage.ssh_target import SshTarget
from agentcage.cli.main import cli
from agentcage.errors import PodmanError
from tests.unit.cage.fakes import HEALTHY_HOST, FakeBuilder, FakeSystemdPodman, write_config
from tests.unit.cage.ssh_fakes import ShellRunner, known_target, with_store

# What `podman images` lists on the target: two of agentcage's copies and someone else's.
TARGET_IMAGES = "\n".join(
    ["localhost/agentcage-proxy:t", "localhost/agentcage-demo-agent:t", "localhost/theirs:1"]
)


# A Podman machine's store is the Mac's build cache: its images are not copies to remove.
@pytest.mark.parametrize(
    ("machine", "copies"),
    [(None, ["localhost/agentcage-demo-agent:t", "localhost/agentcage-proxy:t"]),
     ("podman-machine-default", [])],
)  # fmt: skip
def test_a_half_finished_create_on_a_target_leaves_nothing_there_or_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, machine: str | None, copies: list[str]
) -> None:
    disk = tmp_path / "target"
    target = SshTarget("box", "root", "h", uid=0, home=str(disk / "root"), machine=machine)
    store = known_target(tmp_path, monkeypatch, target)
    # The networks came up before the agent's unit failed to start.
    podman = FakeSystemdPodman(
        answers={
            **HEALTHY_HOST,
            ("systemctl", "start"): PodmanError("agent unit failed"),
            ("podman", "images"): Completed((), 0, TARGET_IMAGES, ""),
        },
        networks={"agentcage-demo-int", "agentcage-demo-ext"},
    )
    units = disk / "etc/containers/systemd"
    files = RemoteFiles(ShellRunner(target, tmp_path / "ssh"), store.deployments)
    host = PodmanHost(units, False, podman, files=files, systemd_dir=disk / "etc/systemd/system")
    monkeypatch.setattr(RemoteHosts, "podman_host", lambda *_: host)
    cages = Cages(store, host, FakeBuilder())
    monkeypatch.setattr(remote_hosts, "facade", lambda *a, **k: with_store(cages, k, store))

    config = write_config(tmp_path)
    created = CliRunner().invoke(cli, ["cage", "create", "-c", str(config), "--host", "box"])

    assert created.exit_code == PodmanError.exit_code, created.output
    assert "agent unit failed" in created.output
    # There: the units (written before the start), the state copy, networks, images.
    assert not list(units.iterdir())
    assert not list(target.state_root.iterdir())
    assert not podman.networks and not podman.containers
    removed = [c[-1] for c in podman.commands("podman", "rmi")]
    assert sorted(removed) == copies
    # Here: no state, so no record that the cage is on the target.
    assert not store.exists("demo") and not (store.path("demo") / CAGE_RECORD).exists()

"""Which host a cage command drives: the target the cage recorded, else this machine.

One choice (`remote_hosts.podman_host_for`) serves the facade (`cages_for`) and `cage
destroy`'s own start (`destroyer_for`); a cage on a target never asks this machine's
systemd or host container (`PodmanHost.detect`) for a host it would then drop.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcage.cage import remote_hosts
from agentcage.cage.cage_parts import CageParts
from agentcage.cage.podman import PodmanHost
from agentcage.cage.remote_hosts import cages_for, destroyer_for, record_cage_host
from agentcage.cage.ssh_target import SshTarget
from agentcage.cage.state import StateStore
from tests.unit.cage.fakes import RecordingRunner
from tests.unit.cage.ssh_fakes import known_target

BOX = SshTarget("box", "root", "h", 2222)


def _drivers(cage: str) -> list[CageParts]:
    return [cages_for(cage), destroyer_for(cage)]


@pytest.fixture
def detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[PodmanHost]:
    """`PodmanHost.detect` answers a host of its own and records each time it is asked."""
    asked: list[PodmanHost] = []

    def detect(cls: type[PodmanHost], environ: object = None) -> PodmanHost:
        asked.append(PodmanHost(tmp_path / "units", False, RecordingRunner()))
        return asked[-1]

    monkeypatch.setattr(PodmanHost, "detect", classmethod(detect))
    return asked


def test_a_cage_on_a_target_is_driven_there_and_this_machine_is_not_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, detected: list[PodmanHost]
) -> None:
    store = known_target(tmp_path, monkeypatch, BOX)
    record_cage_host(store, "demo", "box")
    for parts in _drivers("demo"):
        assert parts.host.remote == "box (ssh://root@h:2222)"
        assert parts.store.root == store.root and parts.deployed_states == {}
    assert detected == []


def test_a_cage_without_a_record_is_driven_on_this_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, detected: list[PodmanHost]
) -> None:
    known_target(tmp_path, monkeypatch, BOX)
    asked: list[str] = []
    monkeypatch.setattr(
        remote_hosts.RemoteHosts, "podman_host", lambda self, name, *_: asked.append(name)
    )
    drivers = _drivers("demo")
    assert [parts.host for parts in drivers] == detected and len(detected) == 2
    assert asked == []
    assert isinstance(drivers[0].store, StateStore)

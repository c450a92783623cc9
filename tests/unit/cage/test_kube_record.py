"""A Kubernetes cage in the state store: the Podman commands refuse it, keeping its state."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcage.cage.kube.kube_record import KubeRecord, is_kube, load_record, save_record
from agentcage.config.load import load_config
from agentcage.errors import StateError
from tests.unit.cage.fakes import FakeSystemdPodman, make_cages, write_config


def test_podman_commands_refuse_a_kubernetes_cage_and_keep_its_state(tmp_path: Path) -> None:
    host = FakeSystemdPodman()
    cages, _ = make_cages(tmp_path, host)
    path = write_config(tmp_path)
    cages.store.save_config(load_config(path), path.read_text())
    save_record(cages.store, "demo", KubeRecord("team-a", "prod"))
    assert is_kube(cages.store, "demo")
    assert load_record(cages.store, "demo") == KubeRecord("team-a", "prod")
    for command in (cages.destroy, cages.start, cages.stop, cages.deployed):
        with pytest.raises(StateError, match=r"runs on Kubernetes \(namespace 'team-a'"):
            command("demo")
    with pytest.raises(StateError, match="runs on Kubernetes"):
        cages.update("demo", path)
    assert cages.store.exists("demo") and is_kube(cages.store, "demo")
    assert [(row.name, row.state) for row in cages.statuses()] == [("demo", "kubernetes")]

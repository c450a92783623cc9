"""A microVM cage's lifecycle commands act on its one `vm` unit, not the container roles."""

from __future__ import annotations

from pathlib import Path

from agentcage.cage import layout, topology
from agentcage.cage.lifecycle import Cages
from agentcage.config import load_config
from tests.unit.cage.fakes import RecordingRunner, make_cages, ok, write_config


def _vm_cage(tmp_path: Path) -> tuple[Cages, RecordingRunner]:
    """A microVM cage's state as `create` leaves it (nothing is built or started)."""
    cages, runner = make_cages(tmp_path)
    path = write_config(tmp_path, extra="isolation: firecracker\n")
    cages.store.save_config(load_config(path), path.read_text())
    topology.allocate(cages.store, "demo")
    layout.save_images(cages.store, "demo", layout.Images("vm", "vm", "localhost/agent:t"))
    return cages, runner


def test_start_stop_and_status_use_the_vm_unit(tmp_path: Path) -> None:
    cages, runner = _vm_cage(tmp_path)
    runner.answers[("systemctl", "is-active")] = ok("active\n")
    cages.stop("demo")
    assert cages.start("demo") == "active"
    systemctl = runner.commands("systemctl")
    assert ("systemctl", "stop", "agentcage-demo-vm.service") in systemctl
    assert ("systemctl", "start", "agentcage-demo-vm.service") in systemctl
    assert not [c for c in systemctl if any("-agent.service" in w for w in c)]
    runner.answers[("systemctl", "show")] = ok("Id=agentcage-demo-vm.service\nActiveState=active\n")
    (row,) = cages.statuses()
    assert row.state == "active"
    shown = runner.commands("systemctl", "show")
    assert shown and "agentcage-demo-vm.service" in shown[-1]


def test_reload_of_a_stopped_vm_cage_only_renders_the_config(tmp_path: Path) -> None:
    cages, runner = _vm_cage(tmp_path)
    runner.answers[("systemctl", "is-active")] = ok("inactive\n")
    assert cages.reload("demo") == []
    assert (layout.host_paths(cages.store, "demo").sidecar_config_dir / "config.yaml").exists()
    assert not runner.commands("podman", "kill")

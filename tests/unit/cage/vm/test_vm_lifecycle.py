"""A microVM cage's lifecycle commands act on its one `vm` unit, not the container roles."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcage.cage import layout, topology
from agentcage.cage.lifecycle import Cages
from agentcage.cage.status_report import render, report
from agentcage.cage.vm import vm_control
from agentcage.config import load_config
from agentcage.errors import VmmError
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


def test_status_asks_the_guest_and_a_role_that_died_there_is_unhealthy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cages, runner = _vm_cage(tmp_path)
    runner.answers[("systemctl", "show")] = ok("Id=agentcage-demo-vm.service\nActiveState=active\n")
    guest = {"dns": "running", "proxy": "running", "agent": "running"}
    monkeypatch.setattr(vm_control, "guest_roles_now", lambda store, name: dict(guest))
    found = report(cages, "demo")
    assert [(s.role, s.state) for s in found.services] == [
        ("vm", "active"), ("dns", "active"), ("proxy", "active"), ("agent", "active")
    ]  # fmt: skip
    assert found.state == "active" and not found.problems
    guest["proxy"] = "exited 1"
    assert report(cages, "demo").problems == ["proxy is failed"]
    assert "proxy    failed/exited 1" in render(report(cages, "demo"))

    def unreachable(store: object, name: str) -> dict[str, str]:
        raise VmmError("the microVM's control socket closed during 'status'")

    monkeypatch.setattr(vm_control, "guest_roles_now", unreachable)
    assert report(cages, "demo").problems == [f"{r} is unknown" for r in ("dns", "proxy", "agent")]


def test_status_of_a_stopped_vm_cage_is_its_unit_alone(tmp_path: Path) -> None:
    cages, runner = _vm_cage(tmp_path)
    runner.answers[("systemctl", "show")] = ok("Id=agentcage-demo-vm.service\nActiveState=failed\n")
    found = report(cages, "demo")
    assert [(s.role, s.state) for s in found.services] == [("vm", "failed")]
    assert found.problems == ["vm is failed"]


def test_verify_reads_each_roles_state_from_the_guest() -> None:
    status = {"roles": {"dns": None, "proxy": 1, "verify": 0}}
    assert vm_control.role_states(status) == {
        "dns": "running", "proxy": "exited 1", "agent": "never started"
    }  # fmt: skip
    assert [passed for _, passed, _ in vm_control.role_checks(status)] == [True, False, False]


class _Guest:
    """The owner's client of a guest whose proxy died before its first audit line."""

    def __enter__(self) -> _Guest:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def ask(self, op: str, **fields: object) -> dict[str, object]:
        if str(fields["path"]).startswith("state/audit/"):
            raise VmmError("the guest refused 'read': FileNotFoundError: proxy.jsonl")
        return {"content": "Traceback: the proxy's own last words\n"}


def test_logs_of_a_sidecar_without_audit_lines_still_show_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cages, _ = _vm_cage(tmp_path)
    monkeypatch.setattr(vm_control, "guest", lambda store, name: _Guest())
    text = vm_control.log(cages.store, "demo", "proxy")
    assert "the proxy's own last words" in text
    assert "(no audit lines: the guest refused 'read'" in text

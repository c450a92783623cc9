"""`cage list` and `cage status` ask systemd and Podman once each; weakened modes are said."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import pytest
from click.testing import CliRunner

from agentcage.cage import remote_hosts
from agentcage.cage.host_files import LocalFiles, SocketPaths
from agentcage.cage.host_target import HostTarget
from agentcage.cage.lifecycle import Cages
from agentcage.cage.status_report import render, report
from agentcage.cage.topology import Topology
from agentcage.cage.vm.vm_plan import VmPlan
from agentcage.cage.weakened import weakened
from agentcage.cli import cage_cmd
from agentcage.cli.main import cli
from agentcage.config import load_config
from agentcage.errors import UnreachableError
from tests.unit.cage.fakes import FakeSystemdPodman, make_cages, write_config


def test_list_asks_systemd_once_for_all_cages_and_says_rfc3339(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = FakeSystemdPodman()  # its running units became active at 2026-12-05T09:00:00Z
    cages, _ = make_cages(tmp_path, runner)
    for name in ("one", "two"):
        cages.create(write_config(tmp_path, name))
    runner.units["agentcage-two-agent.service"] = "inactive"
    monkeypatch.setattr(remote_hosts, "facade", lambda *a, **k: cages)
    runner.calls.clear()
    result = CliRunner().invoke(cli, ["cage", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["one"]["state"] == "active"
    assert rows["one"]["started_at"] == "2026-12-05T09:00:00+00:00"
    assert rows["one"]["uptime_s"] > 0
    assert rows["two"]["state"] == "inactive" and rows["two"]["started_at"] is None
    (show,) = runner.commands("systemctl")
    assert "--timestamp=unix" in show and show[-2:] == (
        "agentcage-one-agent.service",
        "agentcage-two-agent.service",
    )
    assert not runner.commands("podman")  # uptime comes from systemd


def test_a_cage_with_defaults_is_not_weakened(tmp_path: Path) -> None:
    cages, _ = make_cages(tmp_path)
    assert weakened(cages.host, load_config(write_config(tmp_path))) == []


def test_each_weakening_is_named(tmp_path: Path) -> None:
    cages, _ = make_cages(tmp_path)
    target = HostTarget("agentcage-host", "img", tmp_path, (tmp_path,))
    host = dataclasses.replace(cages.host, host_container=target, cgroups=False)
    extra = (
        "network: {allow_cidrs: [10.0.0.0/8]}\nsecrets: {enabled: false}\n"
        "entropy: false\nrate_limit: false\nmax_request_body: 0\n"
    )
    config = load_config(write_config(tmp_path, extra=extra))
    found = "\n".join(weakened(host, config))
    assert "privileged host container agentcage-host" in found
    assert "no memory, CPU or pids limits" in found
    assert "special-purpose ranges 10.0.0.0/8" in found
    assert "secret scanner is off" in found
    assert "checks turned off: entropy, rate_limit" in found
    assert "max_request_body: 0" in found
    rootless = dataclasses.replace(cages.host, rootless=True)
    # Rootless cages are steered too (NAT works in a user namespace): nothing to list.
    assert "raw flows" not in found + "\n".join(weakened(rootless, config))
    opaque = load_config(write_config(tmp_path, extra="network: {transparent: false}\n"))
    assert weakened(rootless, opaque) == []  # no default deny to weaken
    prefixed = dataclasses.replace(cages.host, prefix=("podman", "exec", "-i", "h"))
    assert "`podman exec -i h` (AGENTCAGE_SYSTEMD_EXEC)" in weakened(prefixed, config)[0]


def test_a_firecracker_cage_names_its_containers_net_admin(tmp_path: Path) -> None:
    cages, _ = make_cages(tmp_path)
    config = load_config(write_config(tmp_path))
    state = tmp_path / "state"
    (state / "vm").mkdir(parents=True)
    write_plan(state, "firecracker")
    (found,) = weakened(cages.host, config, state)
    assert "CAP_NET_ADMIN and /dev/net/tun" in found and "no capabilities" in found
    write_plan(state, "qemu")
    assert weakened(cages.host, config, state) == []
    assert weakened(cages.host, config, tmp_path / "no-such-cage") == []


def test_a_rootless_microvm_cage_says_its_container_runs_as_the_user(tmp_path: Path) -> None:
    cages, _ = make_cages(tmp_path)
    config = load_config(write_config(tmp_path))
    state = tmp_path / "state"
    (state / "vm").mkdir(parents=True)
    write_plan(state, "qemu")
    rootless = dataclasses.replace(cages.host, rootless=True)
    (found,) = weakened(rootless, config, state)
    assert "runs as your own user on the host" in found and "uid 10000" in found
    assert weakened(rootless, config, tmp_path / "no-such-cage") == []  # container cages


def write_plan(state: Path, monitor: Literal["firecracker", "qemu"]) -> None:
    run = state / "vm"
    plan = VmPlan(
        name="c", vcpus=1, mem_mib=512, qemu="", accel="kvm", kernel=run / "k",
        initrd=run / "i", root=run / "r", agent_drive=run / "a", address="10.0.2.2/24",
        gateway="10.0.2.1", topology=Topology("c", 0, "10.89.7.0/24", "10.89.8.0/24"),
        state_dir=state, run_dir=run, resolvers=(), roles=(), monitor=monitor,
    )  # fmt: skip
    (run / "plan.json").write_text(plan.as_json())


def test_blocklist_mode_is_weakened(tmp_path: Path) -> None:
    cages, _ = make_cages(tmp_path)
    path = tmp_path / "b.yaml"
    path.write_text(
        write_config(tmp_path).read_text().replace("allow: [api.example.com]", "block: [x.example]")
    )
    assert weakened(cages.host, load_config(path)) == [
        "domains are a blocklist: every host not listed is reachable"
    ]


def test_status_of_a_cage_whose_sidecars_serve_no_metrics(tmp_path: Path) -> None:
    runner = FakeSystemdPodman()
    cages, _ = make_cages(tmp_path, runner)
    cages.create(write_config(tmp_path))
    runner.units["agentcage-demo-proxy.service"] = "failed"
    found = report(cages, "demo")
    assert [s.state for s in found.services] == ["active", "failed", "active"]
    assert [s.image for s in found.services] == [None, None, None]  # no containers listed
    assert not found.policy_current
    text = render(found)
    assert "proxy    failed" in text
    assert "running: proxy unknown, dns unknown\n" in text  # no reload advice: nothing known
    assert "proxy    metrics unreadable: no metrics socket at " in text
    data = found.as_dict()
    assert data["metrics"]["dns"]["last_hour"] is None  # type: ignore[index]


def test_learn_mode_is_said_first(tmp_path: Path) -> None:
    cages, _ = make_cages(tmp_path)
    config = load_config(write_config(tmp_path, extra="  enforcement: learn\nrate_limit: false\n"))
    found = weakened(cages.host, config)
    assert found[0].startswith("LEARN MODE: the domain list is not enforced")
    assert found[1] == "checks turned off: rate_limit"


def test_status_exits_3_and_names_the_service_that_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = FakeSystemdPodman()
    cages, _ = make_cages(tmp_path, runner)
    cages.create(write_config(tmp_path))
    monkeypatch.setattr(remote_hosts, "facade", lambda *a, **k: cages)
    healthy = CliRunner().invoke(cli, ["cage", "status", "demo", "--json"])
    assert healthy.exit_code == 0, healthy.output
    assert json.loads(healthy.output)["healthy"] is True
    runner.units["agentcage-demo-proxy.service"] = "failed"
    down = CliRunner().invoke(cli, ["cage", "status", "demo"])
    assert down.exit_code == cage_cmd.UNHEALTHY == 3
    assert "NOT HEALTHY: proxy is failed" in down.output
    data = json.loads(CliRunner().invoke(cli, ["cage", "status", "demo", "--json"]).output)
    assert data["healthy"] is False and data["problems"] == ["proxy is failed"]


class _LostTarget(LocalFiles):
    """A target whose connection fails when the metrics sockets are asked for."""

    def target_path(self, local: Path) -> Path:
        return Path("/there") / local.name

    @contextmanager
    def reach_sockets(self, paths: Sequence[Path]) -> Iterator[SocketPaths]:
        raise UnreachableError("cannot reach host target box (ssh://root@h:22): reset")
        yield {}


def test_metrics_of_a_target_that_cannot_be_reached_say_so_per_sidecar(tmp_path: Path) -> None:
    runner = FakeSystemdPodman()
    cages, _ = make_cages(tmp_path, runner)
    cages.create(write_config(tmp_path))
    remote = Cages(cages.store, dataclasses.replace(cages.host, files=_LostTarget()))
    found = report(remote, "demo")
    assert found.metrics["proxy"].socket == "/there/proxy.sock"
    for role in ("proxy", "dns"):
        assert found.metrics[role].error == "cannot reach host target box (ssh://root@h:22): reset"
        assert found.metrics[role].last_hour is None

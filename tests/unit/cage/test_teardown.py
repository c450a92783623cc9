"""`cage destroy`, `list` and `logs` never lose track of a cage (issue 12, finding 4).

Against `FakeSystemdPodman`, which remembers what systemd and Podman hold: the state goes only once
nothing of the cage is left, and a host that cannot be asked is never taken for an empty one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentcage.cage import remote_hosts, teardown
from agentcage.cage.lifecycle import Cages
from agentcage.cage.podman import Completed
from agentcage.cli.main import cli
from agentcage.errors import PodmanError, StateError, UnreachableError
from tests.unit.cage.fakes import FakeSystemdPodman, make_cages, write_config


def _created(
    tmp_path: Path, host: FakeSystemdPodman | None = None
) -> tuple[FakeSystemdPodman, Cages]:
    host = host or FakeSystemdPodman()
    cages, _ = make_cages(tmp_path, host)
    cages.create(write_config(tmp_path))
    return host, cages


def _destroyed(tmp_path: Path, host: FakeSystemdPodman, watch: Callable[[], None]) -> Cages:
    """A cage created on `host`, then destroyed with `watch()` called just before (to
    clear or arm what the test looks at): the create's own commands are not seen."""
    _, cages = _created(tmp_path, host)
    host.calls.clear()
    watch()
    assert cages.destroy("demo")
    return cages


def _removals(host: FakeSystemdPodman) -> list[tuple[str, ...]]:
    verbs = {("podman", "rm"), ("podman", "network"), ("podman", "volume"), ("podman", "secret")}
    return [c for c in host.calls if c[:2] in verbs and "rm" in c[:3]] + [
        c for c in host.calls if c[:1] == ("systemctl",) and "stop" in c
    ]


def test_destroy_with_systemd_unreachable_keeps_everything(tmp_path: Path) -> None:
    host, cages = _created(tmp_path, FakeSystemdPodman(secrets={"agentcage-demo-API_KEY": "v"}))
    host.systemd_reachable = False
    host.calls.clear()
    with pytest.raises(UnreachableError, match="cannot reach systemd") as raised:
        cages.destroy("demo")
    assert raised.value.exit_code == 1
    assert cages.store.exists("demo")
    assert len(list((tmp_path / "quadlet").iterdir())) == 5
    assert not _removals(host)
    assert host.secrets and host.containers


def test_destroy_with_podman_unreachable_keeps_everything(tmp_path: Path) -> None:
    host, cages = _created(tmp_path)
    host.podman_reachable = False
    host.calls.clear()
    with pytest.raises(UnreachableError, match="cannot list containers"):
        cages.destroy("demo")
    assert cages.store.exists("demo")
    # The containers' removal by name runs beside the listings (and fails like them), and
    # so do the unit files' removal and systemd's reload (systemd answered); nothing else
    # is tried and no container or network is gone. The state is kept, and the next
    # destroy finds the rest by the units systemd still runs and by name.
    assert [c[:2] for c in _removals(host)] == [("podman", "rm")]
    assert len(host.containers) == 3 and len(host.networks) == 2
    host.podman_reachable = True
    assert cages.destroy("demo")
    assert not host.containers and not host.networks and not cages.store.exists("demo")


def test_unknown_cage_is_an_error_unless_missing_ok(tmp_path: Path) -> None:
    host = FakeSystemdPodman()
    cages, _ = make_cages(tmp_path, host)
    with pytest.raises(StateError, match="no cage named 'nosuch'"):
        cages.destroy("nosuch")
    assert cages.destroy("nosuch", missing_ok=True) is False
    assert not _removals(host)


def test_destroying_twice_is_the_unknown_cage_case(tmp_path: Path) -> None:
    _, cages = _created(tmp_path)
    assert cages.destroy("demo") is True
    with pytest.raises(StateError, match="no cage named 'demo'"):
        cages.destroy("demo")


def test_parts_left_without_state_are_found_and_removed(tmp_path: Path) -> None:
    # What an older destroy left behind: state gone, the cage still running.
    host = FakeSystemdPodman(secrets={"agentcage-old-KEY": "v"})
    host._bring_up("old")
    cages, _ = make_cages(tmp_path, host)
    lines: list[str] = []
    cages.progress = lines.append
    assert cages.destroy("old") is True
    assert not host.containers and not host.networks and not host.secrets
    assert lines[0] == "no state for cage 'old', but the host still has parts of it:"


def test_destroy_leaves_a_cage_whose_name_extends_it_alone(tmp_path: Path) -> None:
    host = FakeSystemdPodman()
    cages, _ = make_cages(tmp_path, host)
    cages.create(write_config(tmp_path, "demo"))
    cages.create(write_config(tmp_path, "demo-x"))
    host.secrets.update({"agentcage-demo-K": "1", "agentcage-demo-x-K": "2"})
    cages.destroy("demo")
    assert sorted(host.containers) == [f"agentcage-demo-x-{r}" for r in ("agent", "dns", "proxy")]
    assert host.networks == {"agentcage-demo-x-int", "agentcage-demo-x-ext"}
    assert host.secrets == {"agentcage-demo-x-K": "2"}
    left = sorted(p.name for p in (tmp_path / "quadlet").iterdir())
    assert left and all(name.startswith("agentcage-demo-x-") for name in left)
    assert cages.secret_names("demo-x") == ["K"]


def test_unit_files_of_a_volume_are_matched_by_label(tmp_path: Path) -> None:
    directory = tmp_path / "quadlet"
    directory.mkdir()
    mine = directory / "agentcage-a-b-data.volume"
    mine.write_text("[Volume]\nLabel=agentcage.cage=a\n")
    theirs = directory / "agentcage-a-b-agent.container"
    theirs.write_text("[Container]\nLabel=agentcage.cage=a-b agentcage.role=agent\n")
    assert teardown.unit_files(directory, "a") == [mine]
    assert "agentcage-a-b-data-volume.service" in teardown.service_names("a", [mine], [])


def test_plain_services_of_hosts_without_quadlet_are_found_too(tmp_path: Path) -> None:
    directory = tmp_path / "systemd"
    directory.mkdir()
    lines = {
        "agentcage-a-agent.service": "/usr/bin/podman run --label agentcage.cage=a x",
        "agentcage-a-b-data-volume.service": '/bin/sh -c "... --label agentcage.cage=a ..."',
        "agentcage-a-b-agent.service": "/usr/bin/podman run --label agentcage.cage=a-b x",
        "sshd.service": "/usr/sbin/sshd",
    }
    for name, line in lines.items():
        (directory / name).write_text(f"[Service]\nExecStart={line}\n")
    found = teardown.service_files(directory, "a")
    assert [p.name for p in found] == [
        "agentcage-a-agent.service",
        "agentcage-a-b-data-volume.service",
    ]
    names = teardown.service_names("a", found, [])
    assert "agentcage-a-b-data-volume.service" in names
    assert "agentcage-a-b-agent.service" not in names


def test_a_create_that_never_reached_systemd_leaves_nothing(tmp_path: Path) -> None:
    cages, _ = make_cages(tmp_path, FakeSystemdPodman(systemd_reachable=False))
    with pytest.raises(UnreachableError):
        cages.create(write_config(tmp_path))
    assert not cages.store.path("demo").exists()
    assert not list((tmp_path / "quadlet").iterdir())


def test_list_and_logs_say_the_host_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, cages = _created(tmp_path)
    host.systemd_reachable = False
    (row,) = cages.statuses()
    assert row.state == "unreachable" and "not been booted with systemd" in row.error
    monkeypatch.setattr(remote_hosts, "facade", lambda *a, **k: cages)
    listing = CliRunner().invoke(cli, ["cage", "list"])
    assert listing.exit_code == 1
    assert "unreachable" in listing.stdout
    assert "error: cage demo: cannot reach systemd" in listing.stderr
    logs = CliRunner().invoke(cli, ["cage", "logs", "demo"])
    assert logs.exit_code == 1 and "cannot reach systemd" in logs.stderr


def test_logs_of_agent_is_the_agent_unit(tmp_path: Path) -> None:
    _, cages = _created(tmp_path)
    argv = cages.logs_argv("demo", "agent", follow=False)
    assert argv[argv.index("-u") + 1] == "agentcage-demo-agent.service"
    assert argv == cages.logs_argv("demo", "cage", follow=False)


def test_cli_destroy_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host, cages = _created(tmp_path)
    monkeypatch.setattr(remote_hosts, "destroyer", lambda *a, **k: cages)
    invoke = CliRunner().invoke
    unknown = invoke(cli, ["cage", "destroy", "nosuch", "-y"])
    assert unknown.exit_code == 1 and "no cage named 'nosuch'" in unknown.stderr
    missing_ok = invoke(cli, ["cage", "destroy", "nosuch", "--missing-ok"])
    assert missing_ok.exit_code == 0 and "nothing to destroy" in missing_ok.stdout
    host.systemd_reachable = False
    kept = invoke(cli, ["cage", "destroy", "demo", "-y"])
    assert kept.exit_code == 1 and "destroyed" not in kept.stdout
    assert cages.store.exists("demo")
    host.systemd_reachable = True
    assert invoke(cli, ["cage", "destroy", "demo", "-y"]).exit_code == 0
    assert invoke(cli, ["cage", "destroy", "demo", "-y"]).exit_code == 1


def test_destroy_removes_every_container_in_one_call_before_stopping_the_units(
    tmp_path: Path,
) -> None:
    # systemd stops the agent first and the sidecars after it, each unit's ExecStop= a
    # `podman rm` of its own; one `podman rm` of them all stops them at once (each with
    # its own stop timeout), and the units then have nothing left to stop. The cage's
    # containers go by name while Podman lists the rest; a container found by its label
    # alone goes in one call after the listing, still before the units stop.
    host = FakeSystemdPodman()
    cages, _ = make_cages(tmp_path, host)
    cages.create(write_config(tmp_path))
    host.containers["agentcage-demo-leftover"] = "demo"
    host.calls.clear()
    cages.destroy("demo")
    by_name, by_label = [c for c in host.calls if c[:2] == ("podman", "rm")]
    assert by_name[2:5] == by_label[2:5] == ("-v", "-f", "-i")
    assert set(by_name[5:]) == {
        "agentcage-demo-agent", "agentcage-demo-proxy", "agentcage-demo-dns",
        "agentcage-demo-ports",
    }  # fmt: skip
    assert by_label[5:] == ("agentcage-demo-leftover",)
    stop = next(i for i, c in enumerate(host.calls) if c[:2] == ("systemctl", "stop"))
    assert host.calls.index(by_label) < stop
    assert not host.containers


def test_the_containers_go_while_podman_lists_the_rest(tmp_path: Path) -> None:
    # The listings were the first half of a destroy's time; the removal no longer waits
    # for them, only for systemd's answer (a host whose systemd cannot be asked is left
    # untouched: test_destroy_with_systemd_unreachable_keeps_everything).
    host = _ListingWaitsForRemoval()

    def watch() -> None:
        host.removing.clear()
        host.removal_during_listing.clear()

    _destroyed(tmp_path, host, watch)
    assert host.removal_during_listing == [True]
    show = next(i for i, c in enumerate(host.calls) if c[:2] == ("systemctl", "show"))
    removal = next(i for i, c in enumerate(host.calls) if c[:2] == ("podman", "rm"))
    assert show < removal
    assert not host.containers and not host.units


@dataclass
class _ListingWaitsForRemoval(FakeSystemdPodman):
    """The first `podman ps` of a destroy answers once `podman rm` has begun, or after 5 s."""

    removing: threading.Event = field(default_factory=threading.Event)
    removal_during_listing: list[bool] = field(default_factory=list)

    def unscripted(self, argv: tuple[str, ...], input: str | None) -> Completed:
        if argv[:2] == ("podman", "rm"):
            self.removing.set()
        elif argv[:2] == ("podman", "ps") and not self.removal_during_listing:
            self.removal_during_listing.append(self.removing.wait(5))
        return super().unscripted(argv, input)


@dataclass
class _StopWaitsForNetworks(FakeSystemdPodman):
    """`systemctl stop` returns once `podman network rm` has begun, or after 10 s."""

    networks_removing: threading.Event = field(default_factory=threading.Event)
    saw_networks_during_stop: list[bool] = field(default_factory=list)

    def unscripted(self, argv: tuple[str, ...], input: str | None) -> Completed:
        if argv[:3] == ("podman", "network", "rm"):
            self.networks_removing.set()
        elif argv[:2] == ("systemctl", "stop"):
            self.saw_networks_during_stop.append(self.networks_removing.wait(10))
        return super().unscripted(argv, input)


def test_once_the_containers_are_gone_the_units_stop_while_podman_removes_the_rest(
    tmp_path: Path,
) -> None:
    # The units' stop then only runs their ExecStopPost= cleanup: nothing Podman removes
    # waits for it, so networks, volumes and secrets go at the same time.
    host, cages = _created(tmp_path, _StopWaitsForNetworks())
    assert cages.destroy("demo")
    assert host.saw_networks_during_stop == [True]
    assert not host.networks and not host.containers


def test_a_container_that_survived_removal_is_stopped_by_its_unit_first(tmp_path: Path) -> None:
    host, cages = _created(tmp_path)
    first = ("podman", "rm", "-v", "-f", "-i")
    host.answers[first] = Completed((), 1, "", "container is busy")
    assert cages.destroy("demo")
    steps = {("systemctl", "stop"), ("podman", "rm"), ("podman", "network")}
    order = [c[:2] for c in host.calls if c[:2] in steps and "ls" not in c]
    # By name while listing, then all that were found at once; both refused.
    assert order == [
        ("podman", "rm"), ("podman", "rm"), ("systemctl", "stop"), ("podman", "rm"),
        ("podman", "network"),
    ]  # fmt: skip
    assert not host.containers and not host.networks


def test_the_check_after_removal_asks_podman_only_about_what_it_found(tmp_path: Path) -> None:
    # No volumes and no secrets before: nothing made them since, so they are not listed
    # again; containers and networks were there, so they are.
    host, cages = _created(tmp_path)
    before = len(host.calls)
    assert cages.destroy("demo")
    later = host.calls[before:]
    listed = [c[1:3] for c in later if c[:1] == ("podman",) and c[2:3] == ("ls",)]
    listed += [c[1:2] for c in later if c[:2] == ("podman", "ps")]
    first = [("network", "ls"), ("volume", "ls"), ("secret", "ls"), ("ps",)]
    check = [("network", "ls"), ("ps",)]
    assert sorted(listed) == sorted([*first, *check])


def test_what_the_removal_missed_is_still_found(tmp_path: Path) -> None:
    host, cages = _created(tmp_path, FakeSystemdPodman(secrets={"agentcage-demo-API_KEY": "v"}))
    host.answers[("podman", "secret", "rm")] = Completed((), 1, "", "secret is in use")
    with pytest.raises(PodmanError, match="left: secrets: agentcage-demo-API_KEY"):
        cages.destroy("demo")
    assert cages.store.exists("demo")


@dataclass
class _ReloadForgetsStopped(FakeSystemdPodman):
    """systemd's reload in a destroy (every unit file of the cage is gone by then).

    A stopped unit is no longer loaded; one that still runs keeps running without its
    settings (`unset`), and is no longer loaded once it has stopped.
    """

    unset: set[str] = field(default_factory=set)

    def unscripted(self, argv: tuple[str, ...], input: str | None) -> Completed:
        if argv[:2] == ("systemctl", "daemon-reload"):
            self.units = {u: s for u, s in self.units.items() if s != "inactive"}
            self.unset |= set(self.units)
        result = super().unscripted(argv, input)
        if argv[:2] == ("systemctl", "stop"):
            for unit in argv[2:]:
                if unit in self.unset and self.units.get(unit) == "inactive":
                    del self.units[unit]
        return result


def test_units_are_reset_only_when_the_reload_left_one_loaded(tmp_path: Path) -> None:
    # After the reload a stopped unit without its file is gone; `reset-failed` (a round
    # trip to systemd on the destroy's critical path) is only for units still there.
    host, cages = _created(tmp_path, _ReloadForgetsStopped())
    assert cages.destroy("demo")
    assert not host.commands("systemctl", "reset-failed")
    assert not host.units and not cages.store.exists("demo")


def test_a_unit_the_reload_left_loaded_is_reset_and_looked_at_again(tmp_path: Path) -> None:
    host, cages = _created(tmp_path, _ReloadForgetsStopped())
    host.units["agentcage-demo-agent.service"] = "failed"  # crashed before the destroy
    original = host.unscripted

    def stop_leaves_failed(argv: tuple[str, ...], input: str | None) -> Completed:
        result = original(argv, input)
        if argv[:2] == ("systemctl", "stop"):
            host.units["agentcage-demo-agent.service"] = "failed"
        return result

    host.unscripted = stop_leaves_failed  # type: ignore[method-assign]
    assert cages.destroy("demo")
    (reset,) = host.commands("systemctl", "reset-failed")
    assert reset[2:] == ("agentcage-demo-agent.service",)
    assert not host.units and not cages.store.exists("demo")


@dataclass
class _UnitsEndWithTheirContainers(_ReloadForgetsStopped):
    """A container's removal ends its unit, as conmon's exit does.

    A unit that still has its settings then runs its `ExecStop=` and `ExecStopPost=` (two
    `podman rm --cidfile`, recorded in `exec_stops`); one reloaded without its file is
    simply over, or failed for the agent (its 143 after SIGTERM is no success without
    the unit's `SuccessExitStatus=`). The first `podman rm` waits up to 5 s for a reload.
    """

    reloaded: threading.Event = field(default_factory=threading.Event)
    exec_stops: list[str] = field(default_factory=list)

    def unscripted(self, argv: tuple[str, ...], input: str | None) -> Completed:
        if argv[:2] == ("systemctl", "daemon-reload"):
            result = super().unscripted(argv, input)
            self.reloaded.set()
            return result
        if argv[:2] == ("podman", "rm"):
            if not self.commands("podman", "rm")[:-1]:
                self.reloaded.wait(5)
            for name in (a for a in argv[2:] if not a.startswith("-")):
                unit = f"{name}.service"
                if self.units.get(unit) != "active":
                    continue
                if unit in self.unset and name.endswith("-agent"):
                    self.units[unit] = "failed"
                elif unit in self.unset:
                    del self.units[unit]
                else:
                    self.units[unit] = "inactive"
                    self.exec_stops.append(unit)
        return super().unscripted(argv, input)


def test_the_units_forget_their_stop_commands_before_their_containers_go(
    tmp_path: Path,
) -> None:
    # Each unit's `ExecStop=` and `ExecStopPost=` is a `podman rm --cidfile` of a container
    # the destroy has removed already: two Podman processes per unit, one unit after the
    # other, on the destroy's critical path. With the unit files gone and systemd
    # reloaded beside the removal, the units end with their containers and only the
    # network units (no container of their own) are stopped, while the agent's unit,
    # failed, is reset: systemd is asked three times in all.
    host = _UnitsEndWithTheirContainers()
    _, cages = _created(tmp_path, host)
    host.calls.clear()
    host.reloaded.clear()  # the create's
    assert cages.destroy("demo")
    assert host.exec_stops == []
    assert len(host.commands("systemctl", "daemon-reload")) == 1
    stopped = {unit for call in host.commands("systemctl", "stop") for unit in call[2:]}
    assert stopped == {"agentcage-demo-int-network.service", "agentcage-demo-ext-network.service"}
    assert host.commands("systemctl", "reset-failed") == [
        ("systemctl", "reset-failed", "agentcage-demo-agent.service")
    ]
    assert len(host.commands("systemctl", "show")) == 3
    assert not host.units and not host.containers and not cages.store.exists("demo")
    assert not list((tmp_path / "quadlet").iterdir())


@dataclass
class _ReloadWhileRemoving(FakeSystemdPodman):
    """Once `armed`, the reload returns once `podman rm` has begun and a listing was
    asked, or after 0.5 s (with no listing asked); `listed_before_reload` notes listings
    asked before."""

    armed: bool = False
    removing: threading.Event = field(default_factory=threading.Event)
    listing: threading.Event = field(default_factory=threading.Event)
    reloaded: threading.Event = field(default_factory=threading.Event)
    removal_during_reload: list[bool] = field(default_factory=list)
    listed_before_reload: list[tuple[str, ...]] = field(default_factory=list)

    def unscripted(self, argv: tuple[str, ...], input: str | None) -> Completed:
        if argv[:2] == ("podman", "rm"):
            self.removing.set()
        elif argv[:2] == ("podman", "ps") or argv[2:3] == ("ls",):
            if not self.reloaded.is_set():
                self.listed_before_reload.append(argv)
            self.listing.set()
        elif argv[:2] == ("systemctl", "daemon-reload") and self.armed:
            self.removal_during_reload.append(self.removing.wait(5))
            self.listing.wait(0.5)
            result = super().unscripted(argv, input)
            self.reloaded.set()
            return result
        return super().unscripted(argv, input)


def test_podman_lists_the_rest_once_systemd_has_reloaded(tmp_path: Path) -> None:
    # Podman processes that start together wait for each other: four listings asked with
    # the removal held its SIGTERMs back by 0.2-0.4 s (on 2 cores), and the removal waits
    # for the reload anyway (Podman stops each container's health check timer through
    # systemd). So the removal starts with the reload and the listings after it.
    host = _ReloadWhileRemoving()

    def watch() -> None:
        host.reloaded.clear()
        host.listed_before_reload.clear()
        host.armed = True

    cages = _destroyed(tmp_path, host, watch)
    assert host.removal_during_reload == [True]
    assert host.listed_before_reload == []
    assert host.commands("podman", "ps") and host.commands("podman", "secret", "ls")
    assert not host.containers and not host.units and not cages.store.exists("demo")

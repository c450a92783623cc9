"""`cage list` asks systemd and Podman a fixed number of times, however many cages run."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcage.cage import census
from agentcage.errors import UnreachableError
from tests.unit.cage.fakes import (
    NO_SYSTEMD,
    STARTED_AT,
    FakeSystemdPodman,
    make_cages,
    ok,
    write_config,
)


def _calls_for_list(tmp_path: Path, count: int) -> list[tuple[str, ...]]:
    tmp_path.mkdir()
    host = FakeSystemdPodman()
    cages, _ = make_cages(tmp_path, host)
    for i in range(count):
        cages.create(write_config(tmp_path, f"c{i:02}"), base="debian")
    cages.stop("c00")
    host.calls.clear()
    rows = cages.statuses()
    assert [(r.name, r.state) for r in rows] == [
        (f"c{i:02}", "inactive" if i == 0 else "active") for i in range(count)
    ]
    assert all(r.uptime_s is not None for r in rows[1:])
    assert rows[1].started_at.startswith("2027-01-15")  # STARTED_AT, in UTC
    return [c for c in host.calls if c[0] in ("systemctl", "podman")]


def test_list_takes_one_systemctl_and_one_podman_call_for_any_number_of_cages(
    tmp_path: Path,
) -> None:
    # Before: `systemctl is-active` and `podman inspect` for every cage, one after another.
    few = _calls_for_list(tmp_path / "few", 2)
    many = _calls_for_list(tmp_path / "many", 12)
    assert (
        [c[:2] for c in few] == [c[:2] for c in many] == [("systemctl", "show"), ("podman", "ps")]
    )
    assert len(many[0]) == 3 + 12  # every agent unit in the one call


def test_unit_states_of_units_systemd_did_not_mention_are_not_guessed(tmp_path: Path) -> None:
    host = FakeSystemdPodman()
    cages, _ = make_cages(tmp_path, host)
    host.answers[("systemctl", "show")] = ok("Id=a.service\nActiveState=active\n")
    assert census.unit_states(cages.host, ["a.service"])["a.service"]["ActiveState"] == "active"
    with pytest.raises(UnreachableError, match=r"said nothing about b\.service"):
        census.unit_states(cages.host, ["a.service", "b.service"])


def test_an_unreachable_systemd_makes_every_cage_unreachable(tmp_path: Path) -> None:
    host = FakeSystemdPodman()
    cages, _ = make_cages(tmp_path, host)
    for name in ("a", "b"):
        cages.create(write_config(tmp_path, name), base="debian")
    host.systemd_reachable = False
    rows = cages.statuses()
    assert {r.state for r in rows} == {"unreachable"}
    assert all("cannot reach systemd" in r.error for r in rows)
    assert NO_SYSTEMD.splitlines()[0] in rows[0].error


def test_containers_read_podman_ps_json(tmp_path: Path) -> None:
    host = FakeSystemdPodman()
    cages, _ = make_cages(tmp_path, host)
    cages.create(write_config(tmp_path), base="debian")
    found = census.containers(cages.host)
    agent = found["agentcage-demo-agent"]
    assert (agent.cage, agent.role, agent.state, agent.started_at) == (
        "demo",
        "agent",
        "running",
        STARTED_AT,
    )

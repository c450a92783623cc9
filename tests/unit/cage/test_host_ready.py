"""`create` skips `host check` on a host that passed it minutes ago (cage/host_ready.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agentcage.cage import host_ready
from agentcage.cage.lifecycle import Cages
from agentcage.errors import HostError
from tests.unit.cage.fakes import FakeSystemdPodman, make_cages, ok, write_config

PRINT = ("sh", "-c", host_ready.FINGERPRINT)
HOST_A = "boot-1\n4242\n0\n/usr/bin/podman 100 1700000000\n"


def checked(host: FakeSystemdPodman) -> int:
    """How many full host checks ran: each asks `podman info` once."""
    return len(host.commands("podman", "info"))


def create_twice(tmp_path: Path, host: FakeSystemdPodman) -> Cages:
    cages, _ = make_cages(tmp_path, host)
    cages.create(write_config(tmp_path, "one"))
    cages.create(write_config(tmp_path, "two"))
    return cages


def test_a_second_create_repeats_the_warnings_instead_of_the_checks(tmp_path: Path) -> None:
    host = FakeSystemdPodman(answers={PRINT: ok(HOST_A)})
    cages, _ = make_cages(tmp_path, host)
    said: list[str] = []
    cages.progress = said.append
    cages.create(write_config(tmp_path, "one"))
    first = [line for line in said if line.startswith("warning:")]
    before = len(host.calls)
    said.clear()
    again, _ = make_cages(tmp_path, host)  # a new process: only the record is shared
    again.progress = said.append
    again.create(write_config(tmp_path, "two"))
    assert checked(host) == 1
    later = host.calls[before:]
    assert not [
        c for c in later if c[:2] in {("podman", "version"), ("systemctl", "is-system-running")}
    ]
    assert [line for line in said if line.startswith("warning:")] == first
    assert again.quadlet  # recalled with the checks, not asked
    assert (tmp_path / "quadlet" / "agentcage-two-agent.container").exists()


def test_a_changed_host_is_checked_again(tmp_path: Path) -> None:
    host = FakeSystemdPodman(answers={PRINT: ok(HOST_A)})
    cages, _ = make_cages(tmp_path, host)
    cages.create(write_config(tmp_path, "one"))
    host.answers[PRINT] = ok(HOST_A.replace("4242", "9999"))  # the host container restarted
    cages.create(write_config(tmp_path, "two"))
    assert checked(host) == 2


def test_an_old_record_is_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = FakeSystemdPodman(answers={PRINT: ok(HOST_A)})
    cages, _ = make_cages(tmp_path, host)
    cages.create(write_config(tmp_path, "one"))
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + host_ready.TTL + 1)
    cages.create(write_config(tmp_path, "two"))
    assert checked(host) == 2


def test_no_fingerprint_no_memory(tmp_path: Path) -> None:
    create_twice(tmp_path, FakeSystemdPodman(answers={PRINT: ok("")}))
    assert not (tmp_path / "state" / host_ready.RECORD).exists()


def test_a_failing_check_is_never_remembered(tmp_path: Path) -> None:
    host = FakeSystemdPodman(
        answers={PRINT: ok(HOST_A), ("cat", "--", "/proc/1/comm"): ok("init\n")}
    )
    cages, _ = make_cages(tmp_path, host)
    for name in ("one", "two"):
        with pytest.raises(HostError, match="PID 1 is 'init'"):
            cages.create(write_config(tmp_path, name))
    assert checked(host) == 2
    assert not (tmp_path / "state" / host_ready.RECORD).exists()

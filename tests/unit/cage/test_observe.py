"""Reading systemd's and Podman's answers about many units and containers at once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from agentcage.cage.observe import (
    active_since,
    container_facts,
    parse_moment,
    rfc3339,
    unit_properties,
)
from agentcage.cage.podman import Completed, PodmanHost
from agentcage.errors import PodmanError, UnreachableError
from tests.unit.cage.fakes import NO_SYSTEMD, RecordingRunner, ok


def _host(runner: RecordingRunner) -> PodmanHost:
    return PodmanHost(quadlet_dir=Path("/q"), rootless=True, runner=runner)


def test_one_systemctl_show_answers_for_every_unit() -> None:
    runner = RecordingRunner(
        answers={
            ("systemctl", "--user", "show"): ok(
                "Id=a.service\nActiveState=active\nNRestarts=2\n\n"
                "Id=b.service\nLoadState=not-found\nActiveState=inactive\n"
            )
        }
    )
    found = unit_properties(_host(runner), ["a.service", "b.service"])
    assert found["a.service"]["NRestarts"] == "2"
    assert found["b.service"]["LoadState"] == "not-found"
    (call,) = runner.calls
    assert call[-2:] == ("a.service", "b.service")
    assert unit_properties(_host(runner), []) == {}
    assert len(runner.calls) == 1  # nothing to ask, nothing asked


def test_an_unreachable_systemd_is_said() -> None:
    runner = RecordingRunner(answers={("systemctl",): Completed((), 1, "", NO_SYSTEMD)})
    with pytest.raises(UnreachableError):
        unit_properties(_host(runner), ["a.service"])


def _inspected(name: str, **state: object) -> dict[str, object]:
    return {
        "Name": name,
        "State": {"Status": "running", "StartedAt": "2026-12-05T10:00:00.5+01:00", **state},
        "ImageName": "localhost/x:1",
        "Image": "ab" * 32,
        "ImageDigest": "sha256:" + "cd" * 32,
    }


def test_one_inspect_for_every_container_and_missing_ones_are_no_error() -> None:
    stdout = json.dumps([_inspected("a", Health={"Status": "healthy"}), _inspected("b")])
    runner = RecordingRunner(
        answers={
            ("podman", "container", "inspect"): Completed(
                (), 125, stdout, "Error: no such container c\n"
            )
        }
    )
    found = container_facts(_host(runner), ["a", "b", "c"])
    assert sorted(found) == ["a", "b"]
    assert found["a"].health == "healthy" and found["b"].health == ""
    assert found["a"].image_digest == "sha256:" + "cd" * 32
    started = datetime(2026, 12, 5, 9, 0, 0, 500000, tzinfo=UTC)
    assert found["a"].started_at == started
    assert found["a"].uptime_s(started + timedelta(minutes=5)) == 300


def test_a_podman_that_fails_otherwise_is_an_error() -> None:
    runner = RecordingRunner(
        answers={("podman",): Completed((), 125, "", "Error: cannot connect to Podman")}
    )
    with pytest.raises(PodmanError, match="cannot connect to Podman"):
        container_facts(_host(runner), ["a"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-05T09:51:53.123456789Z", "2026-12-05T09:51:53+00:00"),
        ("2026-12-05T10:51:53.1+01:00", "2026-12-05T10:51:53+01:00"),
        ("2026-12-05T09:51:53Z", "2026-12-05T09:51:53+00:00"),
    ],
)
def test_podman_times_become_rfc3339_with_their_offset(text: str, expected: str) -> None:
    moment = parse_moment(text)
    assert moment is not None and rfc3339(moment) == expected


def test_podmans_zero_time_is_no_time() -> None:
    assert parse_moment("0001-01-01T00:00:00Z") is None
    assert parse_moment("") is None
    assert parse_moment("yesterday") is None
    assert rfc3339(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-5)))).endswith("-05:00")


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("@1796461200", datetime(2026, 12, 5, 9, 0, tzinfo=UTC)),
        ("n/a", None),  # never active since systemd loaded it
        ("@0", None),
        ("", None),
    ],
)
def test_active_since_reads_systemds_unix_timestamps(stamp: str, expected: datetime | None) -> None:
    assert active_since({"ActiveEnterTimestamp": stamp}) == expected

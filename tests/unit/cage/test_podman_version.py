"""Which Podman the host has, and whether its systemd reads quadlets."""

from __future__ import annotations

import pytest

from agentcage.cage.podman_version import (
    PodmanVersion,
    podman_version,
    quadlet_available,
    quadlet_generator,
)
from agentcage.errors import PodmanError
from tests.unit.cage.fakes import RecordingRunner, ok

SYSTEM_GENERATOR = "/usr/lib/systemd/system-generators/podman-system-generator"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4.3.1\n", PodmanVersion(4, 3, 1)),
        ("podman version 5.4.2", PodmanVersion(5, 4, 2)),
        ("4.4", PodmanVersion(4, 4, 0)),
        ("5.0.0-dev", PodmanVersion(5, 0, 0)),
    ],
)
def test_versions_parse_and_order(text: str, expected: PodmanVersion) -> None:
    assert PodmanVersion.parse(text) == expected
    assert PodmanVersion(4, 3, 1) < PodmanVersion(4, 4) <= PodmanVersion(4, 4, 0)
    assert str(PodmanVersion(4, 3, 1)) == "4.3.1"


def test_an_unreadable_version_is_an_error_with_a_hint() -> None:
    runner = RecordingRunner(answers={("podman", "version"): ok("")})
    with pytest.raises(PodmanError, match="cannot tell the Podman version") as raised:
        podman_version(runner)
    assert raised.value.hint and "host check" in raised.value.hint


def test_podman_4_3_has_no_quadlet_even_with_a_generator_beside_it() -> None:
    # setup-host puts trixie's generator next to Podman 4.3 for `-dryrun` checks only.
    runner = RecordingRunner(
        answers={("podman", "version"): ok("4.3.1\n"), ("sh", "-c"): ok(SYSTEM_GENERATOR)}
    )
    assert not quadlet_available(runner)
    assert runner.commands("sh") == []  # the version alone decides


def test_podman_5_with_its_generator_has_quadlet() -> None:
    runner = RecordingRunner(
        answers={("podman", "version"): ok("5.4.2\n"), ("sh", "-c"): ok(SYSTEM_GENERATOR + "\n")}
    )
    assert quadlet_available(runner)


def test_podman_5_without_a_generator_has_no_quadlet() -> None:
    runner = RecordingRunner(answers={("podman", "version"): ok("5.4.2\n"), ("sh", "-c"): ok("")})
    assert not quadlet_available(runner)


def test_rootless_looks_for_the_user_generator() -> None:
    runner = RecordingRunner(answers={("sh", "-c"): ok("")})
    assert quadlet_generator(runner, rootless=True) is None
    (call,) = runner.commands("sh", "-c")
    assert "/usr/lib/systemd/user-generators/podman-user-generator" in call
    assert not any("system-generators" in word for word in call)

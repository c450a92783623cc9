"""Fixtures for the end-to-end tests: the host, the fake internet and a cage.

The session's host is made the way a user without systemd as PID 1 makes one: `agentcage
host start` (tests/e2e/host_start.py). test_podman43.py runs the same tests on a Debian 12
host with systemd as PID 1 (tests/e2e/podman43.py, reached through AGENTCAGE_SYSTEMD_EXEC).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import pytest

from tests.e2e.harness import IDLE, SLOWDOWN, Harness, Internet, e2e_config, running, start_internet
from tests.e2e.host_start import HostStartHarness

Scope = Literal["session", "module"]
REAL_KEY = "sk-ant-api03-e2eREALvalue0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
            if item.get_closest_marker("timeout") is None:  # the VM case sets a longer one
                item.add_marker(pytest.mark.timeout(900 * SLOWDOWN))


def host_fixtures(kind: type[Harness], label: str, scope: Scope) -> tuple[Any, Any, Any]:
    """The `harness`, `internet` and `cage` fixtures for one kind of host.

    Here for `host start` (Podman 5) and the whole session; test_podman43.py makes its
    own for Debian 12's Podman 4.3 and runs the same tests on them.
    """

    @pytest.fixture(scope=scope, name="harness")
    def harness() -> Iterator[Harness]:
        yield from running(kind, label)

    @pytest.fixture(scope=scope, name="internet")
    def internet(harness: Harness) -> Internet:
        return start_internet(harness)

    @pytest.fixture(scope=scope, name="cage")
    def cage(harness: Harness, internet: Internet) -> Iterator[str]:
        yield from deployed(harness, internet)

    return harness, internet, cage


def deployed(harness: Harness, internet: Internet) -> Iterator[str]:
    """The `cage` fixture's body: examples/basic created, its key set, destroyed after."""
    config = e2e_config(harness, IDLE)
    result = harness.agentcage(
        "cage", "create", "-c", str(config), "--upstream-ca", str(internet.ca_pem)
    )
    assert result.returncode == 0, result.stderr
    result = harness.agentcage("secret", "set", "basic", "ANTHROPIC_API_KEY", input=REAL_KEY)
    assert result.returncode == 0, result.stderr
    yield "basic"
    harness.agentcage("cage", "destroy", "basic", "-y")


harness, internet, cage = host_fixtures(HostStartHarness, "e2e", "session")

"""Fixtures for the end-to-end tests: the systemd harness, the fake internet and a cage."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import IDLE, Harness, Internet, e2e_config, start_internet

REAL_KEY = "sk-ant-api03-e2eREALvalue0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.timeout(900))


@pytest.fixture(scope="session")
def harness() -> Iterator[Harness]:
    workdir = Path(tempfile.mkdtemp(prefix="agentcage-e2e-"))
    h = Harness(name=f"agentcage-e2e-{os.getpid()}", workdir=workdir)
    h.start()
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture(scope="session")
def internet(harness: Harness) -> Internet:
    return start_internet(harness)


@pytest.fixture(scope="session")
def cage(harness: Harness, internet: Internet) -> Iterator[str]:
    config = e2e_config(harness, IDLE)
    result = harness.agentcage(
        "cage", "create", "-c", str(config), "--upstream-ca", str(internet.ca_pem)
    )
    assert result.returncode == 0, result.stderr
    result = harness.agentcage("secret", "set", "basic", "ANTHROPIC_API_KEY", input=REAL_KEY)
    assert result.returncode == 0, result.stderr
    yield "basic"
    harness.agentcage("cage", "destroy", "basic", "-y")

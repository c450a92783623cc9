"""Option reads give what mitmproxy's give; no reader can change an option through them."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from mitmproxy import optmanager

from agentcage.proxy import option_values


@pytest.fixture(autouse=True)
def installed() -> None:
    option_values.install()


def options() -> optmanager.OptManager:
    manager = optmanager.OptManager()
    manager.add_option("flag", bool, False, "a flag")
    manager.add_option("name", str, "proxy", "a name")
    manager.add_option("limit", int | None, None, "a limit")  # type: ignore[arg-type]
    manager.add_option("hosts", Sequence[str], [], "hosts")
    return manager


def test_atomic_values_are_read_as_set_and_as_defaulted() -> None:
    manager = options()
    assert (manager.flag, manager.name, manager.limit) == (False, "proxy", None)
    manager.update(flag=True, name="agent", limit=7)
    assert (manager.flag, manager.name, manager.limit) == (True, "agent", 7)
    manager.reset()
    assert (manager.flag, manager.name, manager.limit) == (False, "proxy", None)


def test_a_list_read_is_a_copy_of_the_default_and_of_a_set_value() -> None:
    manager = options()
    manager.hosts.append("example.com")  # mutates what the reader got, nothing else
    assert manager.hosts == []
    manager.update(hosts=["a.example"])
    read = manager.hosts
    read.append("b.example")
    assert manager.hosts == ["a.example"]
    assert read is not manager.hosts

"""Stand-ins for an SSH target in unit tests: the "remote" side is this machine's `sh`."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcage.cage.lifecycle import Cages
from agentcage.cage.remote_hosts import RemoteHosts
from agentcage.cage.ssh_target import SshRunner, SshTarget
from agentcage.cage.state import StateStore


class ShellRunner(SshRunner):
    """The remote side is `sh -c` here: the same one-string command line ssh would send."""

    @property
    def prefix(self) -> tuple[str, ...]:
        return ("sh", "-c")


def with_store(cages: object, kwargs: dict[str, object], store: StateStore) -> object:
    """The fake `Cages`, on the store the CLI would use (the user's config directory)."""
    assert isinstance(cages, Cages)
    return Cages(store, kwargs.get("host") or cages.host, cages.builder)  # type: ignore[arg-type]


def known_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: SshTarget) -> StateStore:
    """A config directory under `tmp_path` that knows `target`; its (empty) state store."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("AGENTCAGE_HOST", raising=False)
    RemoteHosts()._save({target.name: target})
    return StateStore()

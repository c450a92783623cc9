"""A cage command has Python's garbage collector frozen at exit once its work is done,
so the process's exit does not collect every object it ever made (cli/cage_cmd.py)."""

from __future__ import annotations

import atexit
import gc
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agentcage.cage import remote_hosts
from agentcage.cli.main import cli
from tests.unit.cage.fakes import FakeSystemdPodman, make_cages, write_config


def _spy(seen: Callable[[], None]) -> Callable[..., Any]:
    """`atexit.register` that notes `gc.freeze` instead of registering it."""
    real = atexit.register

    def register(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if func is gc.freeze:
            seen()
            return func
        return real(func, *args, **kwargs)

    return register


def test_create_freezes_only_after_the_cage_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cages, _ = make_cages(tmp_path, FakeSystemdPodman())
    monkeypatch.setattr(remote_hosts, "facade", lambda *a, **k: cages)
    made_when_frozen: list[bool] = []
    monkeypatch.setattr(
        atexit, "register", _spy(lambda: made_when_frozen.append(cages.store.exists("demo")))
    )
    result = CliRunner().invoke(
        cli, ["cage", "create", "-c", str(write_config(tmp_path)), "--base", "debian"]
    )
    assert result.exit_code == 0, result.output
    assert made_when_frozen == [True]


def test_a_failed_command_does_not_freeze(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frozen: list[bool] = []
    monkeypatch.setattr(atexit, "register", _spy(lambda: frozen.append(True)))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: 1\n")
    result = CliRunner().invoke(cli, ["cage", "create", "-c", str(bad)])
    assert result.exit_code != 0
    assert frozen == []


def test_a_frozen_exit_still_runs_atexit_and_flushes_output(tmp_path: Path) -> None:
    """What the exit of a frozen process still does: atexit handlers (the exec session's
    end, weakref.finalize) and the flush of what was printed."""
    script = (
        "import atexit, gc, sys, weakref\n"
        "class Session: pass\n"
        "s = Session()\n"
        "weakref.finalize(s, print, 'finalized', flush=True)\n"
        "atexit.register(print, 'atexit ran')\n"
        "sys.stdout.write('buffered')\n"
        "atexit.register(gc.freeze)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    assert "buffered" in done.stdout
    assert "atexit ran" in done.stdout
    assert "finalized" in done.stdout

"""The agent unit's wait for its command (cage/agent_started.py), run by the real `sh`.

A Python process stands in for conmon ($MAINPID): like conmon, it is the parent of the
container's init (the real catatonit, as `RunInit=` runs it), which forks and execs the
command; it exits with the init's status. The test process is its parent, so the
stand-in stays a zombie, as conmon does until systemd reaps it, until the test waits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentcage.cage.agent_started import started_step

CATATONIT = shutil.which("catatonit") or "/usr/libexec/podman/catatonit"
CONMON = """
import subprocess, sys
init = subprocess.Popen([sys.argv[1], "--", *sys.argv[2:]])
sys.exit(init.wait())
"""


@pytest.fixture
def conmon() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


def _conmon(
    started: list[subprocess.Popen[bytes]], *command: str, wait: bool = True
) -> subprocess.Popen[bytes]:
    assert Path(CATATONIT).exists(), "catatonit is missing: scripts/setup-host installs it"
    process = subprocess.Popen([sys.executable, "-c", CONMON, CATATONIT, *command])
    started.append(process)
    if not wait:
        return process
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    deadline = time.monotonic() + 10
    # conmon says READY=1 only once the container's init runs: the step starts after.
    while not children.read_text().split():
        assert time.monotonic() < deadline, "the init did not start"
        time.sleep(0.005)
    return process


def _step(mainpid: int | None) -> subprocess.Popen[bytes]:
    env = {"PATH": os.environ["PATH"]}
    if mainpid is not None:
        env["MAINPID"] = str(mainpid)
    return subprocess.Popen(list(started_step()), env=env)


def _state(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("State:"):
            return line.split()[1]
    raise AssertionError(f"no State: line for {pid}")


def test_the_step_ends_once_the_command_runs(conmon: list[subprocess.Popen[bytes]]) -> None:
    fake = _conmon(conmon, "sleep", "30")
    step = _step(fake.pid)
    assert step.wait(timeout=5) == 0
    assert fake.poll() is None  # the command still runs: the step did not wait for its end


def test_a_command_that_cannot_start_holds_the_step_until_conmon_is_reaped(
    conmon: list[subprocess.Popen[bytes]],
) -> None:
    # The init may fail and be reaped before the step looks, as under conmon: no wait.
    fake = _conmon(conmon, "/nonexistent/agentcage-agent", wait=False)
    step = _step(fake.pid)
    deadline = time.monotonic() + 10
    while _state(fake.pid) != "Z":  # exited, not yet reaped: systemd has not seen it yet
        assert time.monotonic() < deadline, "the stand-in for conmon did not exit"
        time.sleep(0.01)
    time.sleep(0.3)
    # Ending now would let `systemctl start` return before the unit's failure is known.
    assert step.poll() is None
    assert fake.wait() != 0
    assert step.wait(timeout=5) == 0


def test_without_a_main_pid_the_step_ends_at_once() -> None:
    assert _step(None).wait(timeout=5) == 0

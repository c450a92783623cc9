"""The PIDs `cage verify`'s network checks enter by, run in a real `sh` (verify_network._PIDS).

From the units' PID files when each PID's parent is the conmon of that container (as
default deny's setup trusts them), else from `podman container inspect`, as before.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentcage.cage.contract import PODMAN as HOST_PODMAN
from agentcage.cage.verify_network import _PIDS

# Stands in for Podman: the PIDs it would print, and a note that it was asked.
PODMAN = """#!/bin/sh
echo asked >> "$(dirname "$0")/asked"
printf '11\\n22\\n'
"""
# Stands in for conmon: a process named `conmon` with the container's name among its
# arguments, whose child is the container's first process.
CONMON = """#!/bin/sh
sleep 60 &
echo $! > "$1"
wait
"""


@pytest.fixture
def host(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("podman", PODMAN), ("conmon", CONMON)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "run").mkdir()
    return tmp_path


@pytest.fixture
def containers(host: Path) -> Iterator[dict[str, int]]:
    """Two "containers" under their conmons, their PID files written as Podman writes them."""
    started = {
        name: subprocess.Popen([str(host / "bin" / "conmon"), str(host / f"{name}.started"), name])
        for name in ("cage-proxy", "cage-agent")
    }
    try:
        pids = {}
        for name in started:
            started_file = host / f"{name}.started"
            for _ in range(500):
                if started_file.exists() and started_file.read_text().strip():
                    break
                time.sleep(0.01)
            pids[name] = int(started_file.read_text())
            (host / "run" / f"{name}.pid").write_text(str(pids[name]))  # no newline
        yield pids
    finally:
        for conmon in started.values():
            subprocess.run(["pkill", "-P", str(conmon.pid)], check=False)
            conmon.kill()
            conmon.wait()


def _pids(host: Path, pid_dir: str, env: dict[str, str] | None = None) -> tuple[str, bool]:
    """What _PIDS sets ("proxy target"), and whether it asked Podman (the stand-in)."""
    script = "set -e; " + _PIDS.replace(HOST_PODMAN, str(host / "bin" / "podman"))
    result = subprocess.run(
        ["/bin/sh", "-c", script + 'echo "$proxy $target"', "verify",
         pid_dir, "cage-proxy", "cage-agent"],
        capture_output=True, text=True, check=False,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    asked = (host / "bin" / "asked").exists()
    (host / "bin" / "asked").unlink(missing_ok=True)
    return result.stdout.strip(), asked


def test_trusted_pid_files_spare_the_podman_process(host: Path, containers: dict[str, int]) -> None:
    expected = f"{containers['cage-proxy']} {containers['cage-agent']}"
    assert _pids(host, str(host / "run")) == (expected, False)
    # A rootless cage's files are in the user's $XDG_RUNTIME_DIR (passed as "").
    assert _pids(host, "", {"XDG_RUNTIME_DIR": str(host / "run")}) == (expected, False)


def test_files_not_there_or_not_trusted_ask_podman(host: Path, containers: dict[str, int]) -> None:
    assert _pids(host, "") == ("11 22", True)  # no $XDG_RUNTIME_DIR
    assert _pids(host, str(host / "elsewhere")) == ("11 22", True)
    # A stale file: the PID is not the child of the agent container's conmon (here, this
    # test's own process), so neither PID is taken from the files.
    (host / "run" / "cage-agent.pid").write_text(str(os.getpid()))
    assert _pids(host, str(host / "run")) == ("11 22", True)
    # The proxy's file names the agent's process: its parent is the agent's conmon.
    (host / "run" / "cage-agent.pid").write_text(str(containers["cage-agent"]))
    (host / "run" / "cage-proxy.pid").write_text(str(containers["cage-agent"]))
    assert _pids(host, str(host / "run")) == ("11 22", True)

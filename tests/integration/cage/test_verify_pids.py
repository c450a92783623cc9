"""`cage verify`'s entry finds the containers' PIDs in their PID files (verify_network.py).

The script is run for real by `sh` against the stand-in of test_steering_entry.py (an
`unshare` running as `conmon` with the container names among its arguments, its PID in
the PID files), with a `podman` first on PATH that records each call: with the files
there, no Podman process runs; without them (a cage deployed before its units wrote
them), one `podman container inspect` gives the PIDs instead. netcheck is replaced by a
command that prints the namespace's addresses. Root only, as verify's entry runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentcage.cage import verify_network
from tests.integration.cage.test_steering_entry import PROXY_IP, start_stand_in

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.geteuid() != 0 or not all(shutil.which(t) for t in ("unshare", "nsenter", "setpriv")),
        reason="needs root, util-linux's unshare, nsenter and setpriv",
    ),
]
NAMES = ("agentcage-basic-proxy", "agentcage-basic-agent", "agentcage-basic-dns")
MARK = verify_network.MARK


@pytest.fixture
def stand_in(tmp_path: Path) -> Iterator[int]:
    proc, pid = start_stand_in(tmp_path, NAMES)
    try:
        yield pid
    finally:
        proc.kill()
        proc.wait(10)


def _fake_podman(tmp_path: Path, pid: int) -> Path:
    """A `podman` that logs its arguments and answers `container inspect` with `pid`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "podman.log"
    script = bin_dir / "podman"
    script.write_text(f'#!/bin/sh\necho "$*" >> {log}\nfor _ in 1 2 3; do echo {pid}; done\n')
    script.chmod(0o755)
    return log


def _verify_entry(tmp_path: Path, pid_dir: Path) -> subprocess.CompletedProcess[str]:
    argv = [
        "/bin/sh", "-c", verify_network.SCRIPT, verify_network.NAME, str(pid_dir), *NAMES,
        "/bin/sh", "-c", "ip -o addr; id -u",
    ]  # fmt: skip
    # The script names `podman` by its full path: point that path at the fake.
    argv[2] = argv[2].replace(verify_network.PODMAN, str(tmp_path / "bin" / "podman"))
    env = {"PATH": os.environ["PATH"]}
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60, env=env)


def test_the_pids_come_from_the_pid_files_without_podman(stand_in: int, tmp_path: Path) -> None:
    log = _fake_podman(tmp_path, stand_in)
    pid_dir = tmp_path / "run"
    pid_dir.mkdir()
    for name in NAMES:
        (pid_dir / f"{name}.pid").write_text(str(stand_in))
    done = _verify_entry(tmp_path, pid_dir)
    assert done.returncode == 0, done.stderr
    assert PROXY_IP in done.stdout  # the program ran in the stand-in's network namespace
    assert done.stdout.rstrip().endswith("10000")  # as the sidecar user
    assert f"{MARK} dns\n" in done.stdout and f"{MARK} read\n" in done.stdout
    assert not log.exists(), log.read_text()


def test_a_cage_without_pid_files_is_asked_of_podman(stand_in: int, tmp_path: Path) -> None:
    log = _fake_podman(tmp_path, stand_in)
    pid_dir = tmp_path / "run"
    pid_dir.mkdir()
    done = _verify_entry(tmp_path, pid_dir)
    assert done.returncode == 0, done.stderr
    assert PROXY_IP in done.stdout
    assert log.read_text().splitlines() == [
        "container inspect --format={{.State.Pid}} " + " ".join(NAMES)
    ]


def test_a_stale_pid_file_is_not_trusted(stand_in: int, tmp_path: Path) -> None:
    """A PID whose parent is no conmon of that name: Podman is asked instead."""
    log = _fake_podman(tmp_path, stand_in)
    pid_dir = tmp_path / "run"
    pid_dir.mkdir()
    for name in NAMES:
        (pid_dir / f"{name}.pid").write_text(str(os.getpid()))
    done = _verify_entry(tmp_path, pid_dir)
    assert done.returncode == 0, done.stderr
    assert PROXY_IP in done.stdout
    assert log.read_text().count("container inspect") == 1

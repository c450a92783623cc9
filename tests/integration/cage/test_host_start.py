"""`agentcage host check|start|status|stop` for real on this machine.

The test machine is Debian 12 without systemd as PID 1 and with Podman 4.3: `host check`
must say exactly that, then pass once a host container runs (systemd + Podman 5 inside,
the image `scripts/setup-host` builds), and cage commands must reach it with no
environment variable set. Names are unique per run; nothing outside tmp_path is written
except the container itself, which the fixture removes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentcage.cage.podman import PodmanHost

pytestmark = pytest.mark.integration

AGENTCAGE = Path(sys.executable).parent / "agentcage"


class Cli:
    def __init__(self, tmp_path: Path) -> None:
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("AGENTCAGE_SYSTEMD_EXEC", "AGENTCAGE_QUADLET_DIR")
        }
        self.env |= {
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "XDG_DATA_HOME": str(tmp_path / "data"),
        }

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(AGENTCAGE), *args], capture_output=True, text=True, env=self.env, timeout=600
        )


@pytest.fixture
def name() -> Iterator[str]:
    container = f"agentcage-host-it-{os.getpid()}"
    yield container
    subprocess.run(["podman", "rm", "-f", "-t", "0", container], capture_output=True, check=False)


def test_host_check_start_status_stop(tmp_path: Path, name: str) -> None:
    cli = Cli(tmp_path)
    work = tmp_path / "work"
    work.mkdir()

    before = cli("host", "check")
    assert before.returncode == 1, before.stdout
    assert "[fail] systemd: PID 1 is" in before.stdout and "not systemd" in before.stdout
    # A failure until agentcage renders plain systemd units itself, a warning after.
    quadlet = next(line for line in before.stdout.splitlines() if "] quadlet: " in line)
    assert "Podman 4.3.1" in quadlet and "no quadlet" in quadlet
    assert "agentcage host start" in before.stdout

    started = cli("host", "start", "--name", name, "--share", str(work))
    assert started.returncode == 0, started.stderr
    assert f"host container {name}: running (systemd running, Podman 5." in started.stdout
    assert "isolation: cages run inside the privileged host container" in started.stdout

    status = cli("host", "status", "--json")
    assert status.returncode == 0, status.stderr
    described = json.loads(status.stdout)
    assert described["container"] == name and described["state"] == "running"
    assert described["shares"] == [str(tmp_path / "config" / "agentcage"), str(work)]
    assert "weaker isolation" in described["isolation"]

    through = cli("host", "check")
    assert through.returncode == 0, through.stdout
    assert f"[pass] systemd: systemd is PID 1 in the host container {name}" in through.stdout
    assert "[pass] podman: Podman 5." in through.stdout
    assert "[pass] quadlet:" in through.stdout
    assert f"[warn] isolation: cages run inside the privileged host container {name}" in (
        through.stdout
    )

    # Cage commands reach the container's systemd from the record alone: no variable set.
    host = PodmanHost.detect(cli.env)
    assert host.prefix == ("podman", "exec", "-i", name)
    assert host.systemctl("is-system-running", check=False).stdout.strip() in (
        "running",
        "degraded",
    )
    listed = cli("cage", "list")
    assert listed.returncode == 0 and "no cages" in listed.stdout

    stopped = cli("host", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "cage commands still target it" in stopped.stdout
    gone = subprocess.run(["podman", "container", "exists", name], check=False)
    assert gone.returncode == 1
    after = cli("host", "status")
    assert after.returncode == 1 and f"host container {name}: stopped" in after.stdout
    unreachable = cli("host", "check")
    assert unreachable.returncode == 1
    assert f"[fail] systemd: the host container {name} is not running" in unreachable.stdout

    forgotten = cli("host", "stop", "--forget")
    assert forgotten.returncode == 0, forgotten.stderr
    assert not (tmp_path / "config" / "agentcage" / "host.json").exists()
    assert not (tmp_path / "data" / "agentcage" / "host" / name).exists()
    assert cli("host", "status").stdout.startswith("no host container")

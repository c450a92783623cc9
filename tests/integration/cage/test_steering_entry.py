"""Default deny's setup line, as the units carry it, run for real (cage/steering_entry.py).

A stand-in for the proxy container: `unshare` makes a mount and a network namespace in
which the proxy's address sits on `lo`, ip_forward is off and this checkout's venv is
mounted where the runtime image has its own (/opt/agentcage). The line is parsed back
from the rendered unit file and run by `sh` with the host's `nsenter` and `setpriv`;
only `podman` is a script that prints the stand-in's PID, as `podman container inspect`
prints a container's. Root only (namespaces, nftables), as the units' setup runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentcage.cage.contract import PODMAN, VENV_BIN
from agentcage.cage.steering import TABLE
from agentcage.cage.unit import parse
from tests.unit.cage.test_quadlet import units_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.geteuid() != 0
        or not all(shutil.which(t) for t in ("unshare", "nsenter", "setpriv", "nft", "ip")),
        reason="needs root, util-linux's unshare, nsenter and setpriv, nft and ip",
    ),
]
PROXY_IP = "10.213.0.35"  # examples/basic's, as units_for renders it
NET_ADMIN = 1 << 12
VENV = Path(sys.prefix)


@dataclass(frozen=True)
class StandIn:
    pid: int  # the process whose namespaces the line enters

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["nsenter", f"--target={self.pid}", "--net", *argv],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    setup = (
        "mount -t tmpfs tmpfs /opt && mkdir -p /opt/agentcage "
        f"&& mount --bind {VENV} /opt/agentcage && ip link set lo up "
        f"&& ip addr add {PROXY_IP}/28 dev lo && sysctl -qw net.ipv4.ip_forward=0 "
        "&& echo $$ && exec sleep 600"
    )
    proc = subprocess.Popen(
        ["unshare", "--mount", "--net", "--fork", "sh", "-c", setup],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    try:
        assert line.isdigit(), "the stand-in did not start"
        assert (VENV / "bin" / "python").exists() and Path(VENV_BIN).name == "bin"
        yield StandIn(int(line))
    finally:
        proc.kill()
        proc.wait(10)


def _post(role: str, podman: Path) -> list[str]:
    """The unit's ExecStartPost line, with `podman` replaced by `podman`."""
    unit = parse(units_for("basic", [])[f"agentcage-basic-{role}.container"])
    (words,) = unit.get("Service", "ExecStartPost")
    assert isinstance(words, tuple) and words[0] == "-/bin/sh"  # `-`: see quadlet._steering
    script = words[2]
    assert script.count(PODMAN) == 1
    return ["/bin/sh", words[1], script.replace(PODMAN, str(podman)), *words[3:]]


def _podman(tmp_path: Path, output: str) -> Path:
    """A `podman` that records its arguments and prints `output`."""
    fake = tmp_path / "podman"
    fake.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/podman-args\nprintf "{output}"\n')
    fake.chmod(0o755)
    return fake


def _status(text: str) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def test_the_proxys_setup_installs_the_table_in_the_entered_namespace(
    stand_in: StandIn, tmp_path: Path
) -> None:
    argv = _post("proxy", _podman(tmp_path, f"{stand_in.pid}\\n{stand_in.pid}\\n"))
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    inspected = (tmp_path / "podman-args").read_text().split()
    assert inspected == [
        "container", "inspect", "--format={{.State.Pid}}",
        "agentcage-basic-proxy", "agentcage-basic-proxy",
    ]  # fmt: skip
    table = stand_in.run("nft", "list", "table", "ip", TABLE)
    assert table.returncode == 0, table.stderr
    assert 'iifname "lo" meta l4proto tcp redirect to :8079' in table.stdout
    assert "lookup 4079" in stand_in.run("ip", "rule").stdout
    # The host's own namespace got nothing.
    assert subprocess.run(["nft", "list", "table", "ip", TABLE], capture_output=True).returncode


def test_the_python_runs_with_net_admin_alone_and_isolated(
    stand_in: StandIn, tmp_path: Path
) -> None:
    argv = _post("agent", _podman(tmp_path, f"{stand_in.pid}\\n{stand_in.pid}\\n"))
    at = argv.index("-m")
    probe = (
        "import json, os, subprocess, sys; "
        "addr = subprocess.run(['ip', '-o', 'addr'], capture_output=True, text=True).stdout; "
        "print(json.dumps({'status': open('/proc/self/status').read(), 'path': sys.path, "
        "'env': dict(os.environ), 'addr': addr}))"
    )
    done = subprocess.run(
        [*argv[:at], "-c", probe], capture_output=True, text=True, check=False, timeout=60,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    status = _status(seen["status"])
    for caps in ("CapEff", "CapPrm", "CapBnd"):
        assert int(status[caps], 16) == NET_ADMIN, caps
    assert int(status["CapInh"], 16) == 0
    assert status["NoNewPrivs"].strip() == "1"
    assert status["Uid"].split()[0] == "0"
    assert PROXY_IP in seen["addr"]  # the stand-in's network namespace
    assert "" not in seen["path"] and str(tmp_path) not in seen["path"]
    assert set(seen["env"]) <= {"PATH", "LC_CTYPE"}


@pytest.mark.parametrize("output", ["0\\n0\\n", "", "12x\\n"])
def test_no_running_container_means_nothing_runs_and_the_step_fails(
    stand_in: StandIn, tmp_path: Path, output: str
) -> None:
    """A container that is not running has PID 0 in `inspect`: fail, never guess."""
    argv = _post("proxy", _podman(tmp_path, output))
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode != 0
    assert stand_in.run("nft", "list", "table", "ip", TABLE).returncode != 0


def test_a_failing_inspect_fails_the_step(stand_in: StandIn, tmp_path: Path) -> None:
    fake = tmp_path / "podman"
    fake.write_text(f"#!/bin/sh\necho {stand_in.pid}\nexit 125\n")
    fake.chmod(0o755)
    done = subprocess.run(_post("proxy", fake), capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert stand_in.run("nft", "list", "table", "ip", TABLE).returncode != 0

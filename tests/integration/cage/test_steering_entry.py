"""Default deny's setup line, as the units carry it, run for real (cage/steering_entry.py).

A stand-in for the proxy container: `unshare` makes a mount and a network namespace in
which the proxy's address sits on `lo`, ip_forward is off and this checkout's venv is
mounted where the runtime image has its own (/opt/agentcage). The `unshare` that holds
it runs as `conmon` (a link of that name), with the container names among its
arguments, as Podman's conmon has `-n NAME`; the PID files hold the stand-in's PID, as
`podman run --pidfile` writes a container's. The line is parsed back from the rendered
unit file and run by `sh` with the host's `nsenter`, `setpriv` and `grep`, with `%t`
given the PID files' directory as systemd would. Root only (namespaces, nftables), as
the units' setup runs.
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

from agentcage.cage.contract import VENV_BIN
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


NAMES = ("agentcage-basic-proxy", "agentcage-basic-agent")


@dataclass(frozen=True)
class StandIn:
    pid: int  # the process whose namespaces the line enters
    pid_dir: Path  # where its PID files are (systemd's %t for the units)

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["nsenter", f"--target={self.pid}", "--net", *argv],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip

    def write(self, name: str, text: str) -> None:
        (self.pid_dir / f"{name}.pid").write_text(text)  # no newline, as the runtime's


def start_stand_in(tmp_path: Path, names: tuple[str, ...]) -> tuple[subprocess.Popen[str], int]:
    setup = (
        "mount -t tmpfs tmpfs /opt && mkdir -p /opt/agentcage "
        f"&& mount --bind {VENV} /opt/agentcage && ip link set lo up "
        f"&& ip addr add {PROXY_IP}/28 dev lo && sysctl -qw net.ipv4.ip_forward=0 "
        "&& echo $$ && exec sleep 600"
    )
    conmon = tmp_path / "conmon"
    if not conmon.exists():
        conmon.symlink_to(str(shutil.which("unshare")))
    proc = subprocess.Popen(
        [str(conmon), "--mount", "--net", "--fork", "sh", "-c", setup, *names],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.isdigit():
        proc.kill()
        proc.wait(10)
        raise AssertionError("the stand-in did not start")
    return proc, int(line)


@pytest.fixture
def stand_in(tmp_path: Path) -> Iterator[StandIn]:
    proc, pid = start_stand_in(tmp_path, NAMES)
    try:
        assert (VENV / "bin" / "python").exists() and Path(VENV_BIN).name == "bin"
        pid_dir = tmp_path / "run"
        pid_dir.mkdir()
        found = StandIn(pid, pid_dir)
        for name in NAMES:
            found.write(name, str(pid))
        yield found
    finally:
        proc.kill()
        proc.wait(10)


def _post(role: str, pid_dir: Path) -> list[str]:
    """The unit's ExecStartPost line, with `%t` as systemd expands it."""
    unit = parse(units_for("basic", [])[f"agentcage-basic-{role}.container"])
    words, *_ = unit.get("Service", "ExecStartPost")
    assert isinstance(words, tuple) and words[0] == "-/bin/sh"  # `-`: see quadlet._steering
    assert words[4] == "%t" and "podman" not in words[2]
    return ["/bin/sh", words[1], words[2], words[3], str(pid_dir), *words[5:]]


def _status(text: str) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def test_the_proxys_setup_installs_the_table_in_the_entered_namespace(stand_in: StandIn) -> None:
    argv = _post("proxy", stand_in.pid_dir)
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    table = stand_in.run("nft", "list", "table", "ip", TABLE)
    assert table.returncode == 0, table.stderr
    assert 'iifname "lo" meta l4proto tcp redirect to :8079' in table.stdout
    assert "lookup 4079" in stand_in.run("ip", "rule").stdout
    # The host's own namespace got nothing.
    assert subprocess.run(["nft", "list", "table", "ip", TABLE], capture_output=True).returncode


def test_the_python_runs_with_net_admin_alone_and_isolated(
    stand_in: StandIn, tmp_path: Path
) -> None:
    argv = _post("agent", stand_in.pid_dir)
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


@pytest.mark.parametrize("text", ["0", "", "12x", None])
def test_no_pid_means_nothing_runs_and_the_step_fails(stand_in: StandIn, text: str | None) -> None:
    """No file, or no PID in it: fail, never guess."""
    pid_file = stand_in.pid_dir / "agentcage-basic-proxy.pid"
    if text is None:
        pid_file.unlink()
    else:
        pid_file.write_text(text)
    done = subprocess.run(_post("proxy", stand_in.pid_dir), capture_output=True, check=False)
    assert done.returncode != 0
    assert stand_in.run("nft", "list", "table", "ip", TABLE).returncode != 0


def test_a_stale_pid_file_is_not_trusted(stand_in: StandIn) -> None:
    """Podman leaves the file when the container goes: its PID may be anyone's by then."""
    other = subprocess.Popen(["sleep", "600"])  # its parent is this test, not a conmon
    try:
        stand_in.write("agentcage-basic-agent", str(other.pid))
        done = subprocess.run(
            _post("agent", stand_in.pid_dir), capture_output=True, text=True, check=False
        )
        assert done.returncode != 0
        assert "default" not in stand_in.run("ip", "route").stdout
    finally:
        other.kill()
        other.wait(10)
    stand_in.write("agentcage-basic-proxy", str(os.getpid()))  # no process of the name
    done = subprocess.run(_post("proxy", stand_in.pid_dir), capture_output=True, check=False)
    assert done.returncode != 0
    assert stand_in.run("nft", "list", "table", "ip", TABLE).returncode != 0


def test_another_containers_process_is_not_trusted(stand_in: StandIn, tmp_path: Path) -> None:
    """A PID whose conmon is another container's (another cage's proxy, say) fails."""
    proc, pid = start_stand_in(tmp_path, ("agentcage-other-proxy",))
    try:
        stand_in.write("agentcage-basic-proxy", str(pid))
        done = subprocess.run(_post("proxy", stand_in.pid_dir), capture_output=True, check=False)
        assert done.returncode != 0
        nsenter = ["nsenter", f"--target={pid}", "--net", "nft", "list", "table", "ip", TABLE]
        assert subprocess.run(nsenter, capture_output=True, check=False).returncode != 0
    finally:
        proc.kill()
        proc.wait(10)

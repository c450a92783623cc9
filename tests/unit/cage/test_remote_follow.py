"""Reaching a remote cage's live parts: its metrics sockets forwarded over the master
connection, its audit logs followed with `tail -F` there (the target is `sh` here)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter

from agentcage.audit.reading import Line
from agentcage.cage.host_files import RemoteFiles
from agentcage.cage.remote_tail import RemoteTail, tail_argv
from agentcage.cage.ssh_target import SshRunner, SshTarget
from agentcage.cage.state import StateStore
from agentcage.errors import UnreachableError
from agentcage.metrics.exposition import MetricsEndpoint, MetricsServer
from agentcage.metrics.scrape import scrape_unix
from tests.unit.cage.ssh_fakes import ShellRunner

TARGET = SshTarget("box", "ops", "h", 2222)


def test_forwards_are_asked_of_the_master_connection_by_socket_path(tmp_path: Path) -> None:
    runner = SshRunner(TARGET, tmp_path / "ssh", sockets=tmp_path / "s")
    argv = runner.control("forward", "-L", "/here/0.sock:/there/proxy.sock")
    assert argv[0] == "ssh" and f"ControlPath={tmp_path / 's'}/%C" in argv
    # A control command to the master: no remote command, no `--`, no TCP port.
    assert argv[-5:] == ("-O", "forward", "-L", "/here/0.sock:/there/proxy.sock", "ops@h")
    assert "--" not in argv


def test_the_tail_starts_after_what_was_read_and_stops_when_its_stdin_closes(
    tmp_path: Path,
) -> None:
    argv = tail_argv(SshRunner(TARGET, tmp_path / "ssh"), Path("/t/a b.jsonl"), 120)
    assert argv[-3:-1] == ("ops@h", "--")
    sh, flag, script, name, path, start = shlex.split(argv[-1])
    assert (sh, flag, name, path, start) == ("sh", "-c", "sh", "/t/a b.jsonl", "121")  # from 1
    assert 'tail -F -c "+$n" -- "$1"' in script and "cat >/dev/null" in script


class SymlinkRunner(ShellRunner):
    """Forwards as a link to the socket: what the master connection does for a client."""

    forwards: list[tuple[Path, Path]]
    cancelled: list[tuple[Path, Path]]

    def forward_socket(self, local: Path, remote: Path) -> None:
        assert not local.exists()  # ssh refuses to bind over an existing path
        assert local.parent.stat().st_mode & 0o777 == 0o700
        local.symlink_to(remote)
        self.forwards.append((local, remote))

    def cancel_forward(self, local: Path, remote: Path) -> None:
        self.cancelled.append((local, remote))


def test_sockets_there_are_reached_through_private_forwards_removed_after(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "cfg")
    home = tmp_path / "remote-home"
    runner = SymlinkRunner(SshTarget("box", "root", "h", home=str(home)), tmp_path / "ssh")
    runner.sockets, runner.forwards, runner.cancelled = tmp_path / "sockets", [], []
    runner.sockets.mkdir(mode=0o700)
    files = RemoteFiles(runner, store.deployments)
    proxy = store.deployments / "demo/metrics/proxy/proxy.sock"
    dns = store.deployments / "demo/metrics/dns/dns.sock"
    there = files.target_path(proxy)
    there.parent.mkdir(parents=True)
    registry = CollectorRegistry()
    Counter("agentcage_test_requests", "requests", registry=registry).inc(3)
    server = MetricsServer(registry, MetricsEndpoint(socket_path=there))
    try:
        with files.reach_sockets([proxy, dns]) as reached:
            local = reached[proxy]
            assert local is not None and local.parent.parent == runner.sockets
            assert scrape_unix(local).total("agentcage_test_requests_total") == 3
            assert reached[dns] is None  # no socket there: nothing forwarded
    finally:
        server.close()
    assert runner.forwards == [(local, there)] and runner.cancelled == runner.forwards
    assert list(runner.sockets.iterdir()) == []


def _record(n: int) -> bytes:
    return json.dumps({"time": f"2026-12-06T06:00:{n:02d}Z", "path": f"/{n}"}).encode() + b"\n"


def _wait_for(tail: RemoteTail, count: int) -> list[Line]:
    got: list[Line] = []
    deadline = time.monotonic() + 10
    while len(got) < count and time.monotonic() < deadline:
        got += tail.poll()
        time.sleep(0.05)
    return got


def _paths(lines: list[Line]) -> list[str]:
    return [line.record["path"] for line in lines]


def test_a_remote_log_is_followed_from_where_the_copy_ends_across_a_rotation(
    tmp_path: Path,
) -> None:
    log = tmp_path / "remote/proxy.jsonl"
    log.parent.mkdir()
    torn = _record(3)
    log.write_bytes(_record(1) + _record(2) + torn[:10])  # copied while 3 was written
    read = len(_record(1) + _record(2))  # what `audit` printed of its copy
    tail = RemoteTail(ShellRunner(TARGET, tmp_path / "ssh"), [log], [read])
    try:
        with log.open("ab") as handle:
            handle.write(torn[10:] + _record(4))
        assert _paths(_wait_for(tail, 2)) == ["/3", "/4"]  # neither 1 nor 2 again
        log.rename(log.with_name("proxy.jsonl.1"))  # the writer rotates
        log.write_bytes(_record(5))
        assert _paths(_wait_for(tail, 1)) == ["/5"]
        assert tail.poll() == []
    finally:
        tail.close()
    assert all(stream.process.returncode is not None for stream in tail._streams)


def test_a_log_rotated_since_the_copy_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "proxy.jsonl"
    log.write_bytes(_record(7))  # the new file, shorter than what was read of the old
    tail = RemoteTail(ShellRunner(TARGET, tmp_path / "ssh"), [log], [len(_record(1)) * 3])
    try:
        with log.open("ab") as handle:
            handle.write(_record(8))
        assert _paths(_wait_for(tail, 2)) == ["/7", "/8"]
    finally:
        tail.close()


def test_a_lost_connection_names_the_target_after_the_lines_that_came(tmp_path: Path) -> None:
    log = tmp_path / "dns.jsonl"
    log.write_bytes(_record(1))
    tail = RemoteTail(ShellRunner(TARGET, tmp_path / "ssh"), [log], [0])
    try:
        assert _paths(_wait_for(tail, 1)) == ["/1"]
        (stream,) = tail._streams
        os.killpg(stream.process.pid, signal.SIGKILL)  # ssh and what it ran: gone
        deadline = time.monotonic() + 10
        with pytest.raises(UnreachableError, match=r"lost host target box .* while following"):
            while time.monotonic() < deadline:
                tail.poll()
                time.sleep(0.05)
    finally:
        tail.close()

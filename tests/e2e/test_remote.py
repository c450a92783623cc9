"""The cage tests again, on a remote host reached only over SSH (tests/e2e/ssh_host.py).

agentcage shares nothing with the target but an SSH connection: `host add` records it,
AGENTCAGE_HOST sends `cage create` there, and every later command (list, verify, logs,
reload, secret, domain, update, destroy) finds it through the cage's record. The tests
of test_cage.py run unchanged in their order; the first ones here check that the files
and images really travelled, the last that destroy left the target clean. With
AGENTCAGE_REMOTE_VM_FULL=1 the target is the Debian VM under TCG (debian_vm.VmHost).
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from agentcage.cage.deploy import OUR_IMAGE
from agentcage.cage.ssh_target import socket_dir
from agentcage.cli.cage_cmd import UNHEALTHY
from tests.e2e import test_cage as rootful
from tests.e2e.conftest import REAL_KEY, host_fixtures
from tests.e2e.debian_vm import VmHost
from tests.e2e.harness import REMOTE_VM_FULL, REPO, SLOWDOWN, Internet, nothing_left, run
from tests.e2e.ssh_host import REMOTE_STATE, TARGET, SshHarness
from tests.e2e.test_status import AGENT, TRAFFIC

# AGENTCAGE_REMOTE_VM_FULL=1: the same tests against the Debian VM under TCG.
harness, internet, cage = host_fixtures(VmHost if REMOTE_VM_FULL else SshHarness, "ssh", "module")


def test_cage_runs_on_the_target_and_its_files_travelled(harness: SshHarness, cage: str) -> None:
    state = harness.config_home / "agentcage/deployments/basic"
    assert json.loads((state / "target.json").read_text()) == {"host": TARGET}
    # Units live on the target only; no unit directory is shared with this machine.
    assert [p.name for p in harness.unit_files("agentcage-basic-agent.container")]
    # The CA the proxy mounts is the one made here, copied over SSH.
    remote_ca = harness.exec("cat", str(REMOTE_STATE / "basic/ca-public/ca.pem"))
    assert remote_ca == (state / "ca-public/ca.pem").read_text()
    # The images were loaded there (the target has no shared image store), same IDs.
    images = json.loads((state / "images.json").read_text())
    for ref in images.values():
        here = run(["podman", "image", "inspect", "--format", "{{.Id}}", ref]).strip()
        there = harness.exec("podman", "image", "inspect", "--format", "{{.Id}}", ref).strip()
        assert here == there, ref


def test_the_secret_value_is_only_in_podman_on_the_target(harness: SshHarness, cage: str) -> None:
    # Nowhere in the state on either side; only in Podman's secret store there.
    for path in (harness.config_home / "agentcage").rglob("*"):
        if path.is_file():
            assert REAL_KEY.encode() not in path.read_bytes(), path
    found = harness.exec("sh", "-c", f"grep -rl '{REAL_KEY}' {REMOTE_STATE} || true")
    assert not found.strip()


def test_host_list_and_check_name_the_target(harness: SshHarness, cage: str) -> None:
    listed = harness.agentcage("host", "list", "--json")
    (row,) = json.loads(listed.stdout)
    assert row["name"] == TARGET and row["cages"] == ["basic"]
    checked = harness.agentcage("host", "check", "--host", TARGET)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "systemd is PID 1" in checked.stdout
    refused = harness.agentcage("host", "rm", TARGET)
    assert refused.returncode == 1 and "basic" in refused.stderr


def test_audit_command_reads_the_remote_logs(harness: SshHarness, outcome: object) -> None:
    result = harness.agentcage("audit", "basic", "--blocked", "--json")
    assert result.returncode == 0, result.stderr
    assert "attacker.example" in result.stdout


def _status(harness: SshHarness) -> dict[str, Any]:
    result = harness.agentcage("cage", "status", "basic", "--json")
    assert result.returncode in (0, UNHEALTHY), result.stderr
    return dict(json.loads(result.stdout))


def test_status_through_the_target_reads_both_sidecars_metrics(
    harness: SshHarness, cage: str
) -> None:
    before = _status(harness)
    harness.exec("podman", "exec", AGENT, "python3", "-c", TRAFFIC)
    report = _status(harness)
    for role in ("proxy", "dns"):
        metrics = report["metrics"][role]
        assert metrics["error"] is None, metrics
        assert metrics["socket"].startswith(f"{REMOTE_STATE}/basic/metrics/"), metrics
        assert metrics["policy_version"] == report["policy"]["version"]
        assert metrics["last_hour"]["block"] > before["metrics"][role]["last_hour"]["block"]
    assert report["policy"]["current"] is True
    # The forwards are cancelled and their local sockets removed.
    assert not list(socket_dir(harness.env()).glob("fwd-*"))


def _read_until(lines: queue.Queue[str], found: Callable[[str], bool], seen: list[str]) -> None:
    deadline = time.monotonic() + 60 * SLOWDOWN
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(line)
        if found(line):
            return
    raise AssertionError(f"not printed within the timeout; printed: {seen[-20:]}")


def _follow(harness: SshHarness) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    """`audit basic --follow --json` running, its stdout's lines arriving in the queue."""
    follow = subprocess.Popen(
        [str(REPO / ".venv/bin/agentcage"), "audit", "basic", "--follow", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=harness.env(),
    )
    lines: queue.Queue[str] = queue.Queue()
    stdout = follow.stdout
    assert stdout is not None

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return follow, lines


def _blocked_request(harness: SshHarness) -> str:
    """The agent asks for a new unlisted name; the proxy blocks it. Returns the name."""
    marker = f"follow-{uuid.uuid4().hex[:12]}.example"
    request = f"""
import urllib.request
try:
    urllib.request.urlopen("https://{marker}/", timeout=10)
except Exception as exc:
    print("blocked:", exc)
"""
    harness.exec("podman", "exec", AGENT, "python3", "-c", request)
    return marker


def test_audit_follow_through_the_target_prints_new_requests(
    harness: SshHarness, cage: str
) -> None:
    follow, lines = _follow(harness)
    seen: list[str] = []
    try:
        _read_until(lines, lambda line: True, seen)  # the last records: following began
        marker = _blocked_request(harness)
        _read_until(lines, lambda line: marker in line, seen)
    finally:
        follow.send_signal(signal.SIGINT)
        _, stderr = follow.communicate(timeout=30 * SLOWDOWN)
    assert follow.returncode == 0, stderr
    blocked = [json.loads(line) for line in seen if marker in line]
    assert blocked[0]["verdict"] == "block", blocked
    # Neither the history nor the switch to following printed a record twice.
    assert len(seen) == len(set(seen)), seen


def test_audit_follow_names_the_target_when_the_connection_drops(
    harness: SshHarness, cage: str
) -> None:
    follow, lines = _follow(harness)
    seen: list[str] = []
    try:
        # The history first: the copy is made, and the tail sessions start on the master
        # connection right after it. A record of a request made only now cannot be in the
        # copy, so once it is printed a session there carries it. (Waiting for a record
        # written before the copy was made left `ssh -O exit` a window before the sessions
        # started: they then opened a new connection and followed on, as they should.)
        _read_until(lines, lambda line: True, seen)
        marker = _blocked_request(harness)
        _read_until(lines, lambda line: marker in line, seen)
        harness.close_connection()  # the master and every session on it end
        _, stderr = follow.communicate(timeout=30 * SLOWDOWN)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    assert follow.returncode == 1, stderr
    assert f"lost host target {TARGET}" in stderr and ".jsonl there" in stderr, stderr


def test_audit_follow_ends_naming_the_target_when_it_stops_answering(
    harness: SshHarness, cage: str
) -> None:
    follow, lines = _follow(harness)
    seen: list[str] = []
    try:
        _read_until(lines, lambda line: True, seen)  # following began
        marker = _blocked_request(harness)
        _read_until(lines, lambda line: marker in line, seen)  # a session there carries it
        harness.freeze()  # nothing closes the connection: only ssh's probes can tell
        try:
            started = time.monotonic()
            # ServerAliveInterval 10 s x ServerAliveCountMax 3 (+ up to 10 s): 40 s seen.
            _, stderr = follow.communicate(timeout=90 * SLOWDOWN)
            took = time.monotonic() - started
        finally:
            harness.thaw()
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    assert follow.returncode == 1, stderr
    assert f"lost host target {TARGET}" in stderr, stderr
    assert took >= 20, took  # the probes, not something else, ended it
    print(f"audit --follow ended {took:.1f} s after the target froze")


def _agent_state(harness: SshHarness, cage: str) -> str:
    unit = f"agentcage-{cage}-agent.service"
    return harness.exec("systemctl", "is-active", unit, check=False).strip()


def test_stop_and_start_reach_the_target(harness: SshHarness, cage: str) -> None:
    stopped = harness.agentcage("cage", "stop", "basic")
    assert stopped.returncode == 0, stopped.stderr
    assert _agent_state(harness, "basic") == "inactive"
    started = harness.agentcage("cage", "start", "basic")
    assert started.returncode == 0, started.stderr
    assert _agent_state(harness, "basic") == "active"  # and test_cage's checks follow


def test_a_create_that_fails_there_is_rolled_back_there(
    harness: SshHarness, internet: Internet, cage: str
) -> None:
    config = json.loads((harness.shared / "basic.yaml").read_text())
    # Everything is made there (state copy, secrets, networks, units, sidecars) and then
    # the agent cannot start.
    config["name"] = "broken"
    config["container"]["command"] = ["/nonexistent/agentcage-e2e-agent"]
    config["container"]["ports"] = []  # basic publishes that port
    path = harness.shared / "broken.yaml"
    path.write_text(json.dumps(config))
    images = harness.exec("podman", "images", "--format", "{{.Id}}").split()
    created = harness.agentcage(
        "cage", "create", "-c", str(path), "--upstream-ca", str(internet.ca_pem)
    )
    assert created.returncode != 0, created.stdout
    # It failed where intended: the agent's start, after everything else was up.
    assert "systemctl start agentcage-broken-agent.service" in created.stderr
    assert "create failed; removing everything made for 'broken'" in created.stderr
    nothing_left(harness, "broken")
    assert harness.exec("sh", "-c", f"ls -A {REMOTE_STATE}").split() == ["basic"]
    # Only the copies basic uses are there: any made for broken went with it.
    assert set(harness.exec("podman", "images", "--format", "{{.Id}}").split()) <= set(images)
    assert _agent_state(harness, "basic") == "active"


# Their fixture, then their tests in their file's order (the last destroys the cage).
outcome = rootful.outcome
for _name, _test in vars(rootful).items():
    if _name.startswith("test_"):
        globals()[_name] = _test


def test_destroy_left_the_target_clean(harness: SshHarness, internet: Internet) -> None:
    nothing_left(harness, "basic")
    assert harness.exec("sh", "-c", f"ls -A {REMOTE_STATE}").strip() == ""
    # The images copied for the cage went with it (no other cage there uses them).
    refs = harness.exec("podman", "images", "--format", "{{.Repository}}:{{.Tag}}").split()
    assert not [r for r in refs if OUR_IMAGE.match(r)], refs


def test_an_unreachable_target_is_named_with_what_to_check(harness: SshHarness) -> None:
    harness.close_connection()
    harness.exec("systemctl", "stop", "ssh.service", "ssh.socket")
    listed = harness.agentcage("host", "check", "--host", TARGET)
    assert listed.returncode == 1
    assert f"cannot reach host target {TARGET}" in listed.stderr
    assert "sshd" in listed.stderr or "port" in listed.stderr

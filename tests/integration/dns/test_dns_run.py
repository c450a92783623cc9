"""`agentcage dns run` as a process: start, reload on SIGHUP, stop, and fail closed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import pytest
from tests.support.dns_sidecar import (
    RunningSidecar,
    addresses,
    ask,
    free_port,
    rcode,
    wait_for,
    write_config,
)
from tests.support.fake_dns import ANY_V4, FakeDns
from tests.support.notify import NotifySocket

from agentcage.dns import SINKHOLE_V4

pytestmark = pytest.mark.integration

Start = Callable[..., RunningSidecar]


def _conf_dir(pid: int) -> Path:
    args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    (conf,) = [a.removeprefix("--conf-file=") for a in args if a.startswith("--conf-file=")]
    return Path(conf).parent


def _dnsmasq_of(sidecar: RunningSidecar) -> tuple[int, Path]:
    """dnsmasq's PID and directory; as root, checks it runs as nobody in every uid."""
    pid = sidecar.dnsmasq_pid()
    if os.geteuid() == 0:  # started as nobody: never root, nothing to switch
        assert "Uid:\t65534\t65534\t65534\t65534" in Path(f"/proc/{pid}/status").read_text()
    return pid, _conf_dir(pid)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from agentcage.cli.main import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_sigterm_stops_dnsmasq_and_removes_the_private_dir(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    sidecar = start_sidecar(write_config(tmp_path / "cage.yaml", upstream))
    pid, conf_dir = _dnsmasq_of(sidecar)
    assert (conf_dir / "dnsmasq.conf").exists() and (conf_dir / "servers.conf").exists()
    assert oct(conf_dir.stat().st_mode & 0o777) == "0o700"
    if os.geteuid() == 0:  # dnsmasq runs as nobody and must still read its servers file
        assert conf_dir.stat().st_uid == 65534
    sidecar.ask("allowed.example")
    code, err = sidecar.stop()
    assert code == 0, err
    assert not _alive(pid)
    assert not conf_dir.exists()
    assert sidecar.record_for("allowed.example")["verdict"] == "allow"  # flushed on stop


def test_a_stopped_sidecar_exits_without_the_interpreters_teardown(
    tmp_path: Path, upstream: FakeDns
) -> None:
    # Freeing its modules one by one took 0.2 s of every `cage stop` and `destroy`; the
    # sidecar has closed everything it owns by then (quick_exit.py).
    said = "import atexit, sys; atexit.register(print, 'torn down', file=sys.stderr)"
    config = write_config(tmp_path / "cage.yaml", upstream)
    sidecar = RunningSidecar(config, tmp_path / "audit.jsonl", before=said)
    try:
        sidecar.ask("allowed.example")
        pid = sidecar.dnsmasq_pid()
    finally:
        code, err = sidecar.stop()
    assert code == 0, err
    assert "torn down" not in err
    assert not _alive(pid)
    assert sidecar.record_for("allowed.example")["verdict"] == "allow"  # flushed on stop


def test_dnsmasq_dying_makes_the_sidecar_exit_non_zero(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    sidecar = start_sidecar(write_config(tmp_path / "cage.yaml", upstream))
    os.kill(sidecar.dnsmasq_pid(), signal.SIGKILL)
    sidecar.proc.wait(timeout=10)  # it exits on its own
    code, err = sidecar.stop()
    assert code == 1
    assert "dnsmasq exited unexpectedly" in err and "fail closed" in err


def test_a_killed_sidecar_takes_dnsmasq_with_it(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    # Nobody would audit or enforce tunnel blocks for a dnsmasq left behind. As root,
    # dnsmasq used to drop to nobody itself, which cleared the parent-death signal.
    sidecar = start_sidecar(write_config(tmp_path / "cage.yaml", upstream))
    pid, conf_dir = _dnsmasq_of(sidecar)
    sidecar.proc.kill()
    sidecar.proc.wait(timeout=10)
    try:
        wait_for(lambda: not _alive(pid), timeout=5)
    finally:
        sidecar.stop()
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(conf_dir, ignore_errors=True)  # a killed sidecar removes nothing


def test_listen_address_in_use_is_a_clear_error(tmp_path: Path, upstream: FakeDns) -> None:
    config = write_config(tmp_path / "cage.yaml", upstream)
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", port))
        result = _run_cli("dns", "run", "-c", str(config), "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "listening on" not in result.stderr


def test_invalid_config_and_listen_are_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncontainer: {image: a}\ndomains: {allow: ['evil.com/path']}\n")
    result = _run_cli("dns", "run", "-c", str(bad), "--listen", "127.0.0.1:5399")
    assert result.returncode == 2 and "bad.yaml:3" in result.stderr
    result = _run_cli("dns", "run", "-c", str(bad), "--listen", "localhost:53")
    assert result.returncode == 1 and "--listen 'localhost:53' is not an address" in result.stderr


def test_sighup_applies_allowlist_changes_live(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    path = tmp_path / "cage.yaml"
    sidecar = start_sidecar(write_config(path, upstream))
    pid = sidecar.dnsmasq_pid()
    assert addresses(sidecar.ask("api.new.example")) == ["198.51.100.1"]

    write_config(path, upstream, domains={"allow": ["allowed.example", "new.example"]})
    sidecar.hup()  # as `podman kill --signal HUP` does for `agentcage domain add`
    wait_for(lambda: sidecar.answers("api.new.example") == [ANY_V4])
    assert rcode(sidecar.ask("api.new.example", "TXT")) == "NOERROR"

    write_config(path, upstream, domains={"allow": ["allowed.example"]})
    sidecar.hup()
    wait_for(lambda: sidecar.answers("api.new.example") == ["198.51.100.1"])
    assert rcode(sidecar.ask("api.new.example", "TXT")) == "REFUSED"
    assert sidecar.dnsmasq_pid() == pid  # applied without a restart
    code, err = sidecar.stop()
    assert code == 0 and "reloaded the config (servers file)" in err


# Every check after the first (the start's) takes 3 s, as a slow host might.
_SLOW_RELOAD_CHECK = """
import time, agentcage.dns.plan as plan
_checked, _calls = plan.checked_plan, []
def _slow(path, **how):
    _calls.append(path)
    if len(_calls) > 1:
        time.sleep(3)
    return _checked(path, **how)
plan.checked_plan = _slow
"""


def test_queries_are_answered_while_a_reload_is_checked(tmp_path: Path, upstream: FakeDns) -> None:
    path = tmp_path / "cage.yaml"
    sidecar = RunningSidecar(
        write_config(path, upstream), tmp_path / "audit.jsonl", before=_SLOW_RELOAD_CHECK
    )
    try:
        write_config(path, upstream, domains={"allow": ["allowed.example", "new.example"]})
        sidecar.hup()
        time.sleep(0.3)  # the check has begun
        started = time.monotonic()
        assert addresses(sidecar.ask("api.new.example")) == ["198.51.100.1"]  # the old list
        assert time.monotonic() - started < 1.5
        wait_for(lambda: sidecar.answers("api.new.example") == [ANY_V4], timeout=10)
    finally:
        code, err = sidecar.stop()
    assert code == 0 and "reloaded the config (servers file)" in err


def test_sighup_restarts_dnsmasq_for_blocklist_changes(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    path = tmp_path / "cage.yaml"
    sidecar = start_sidecar(write_config(path, upstream, domains={"block": ["pastebin.com"]}))
    pid = sidecar.dnsmasq_pid()
    assert addresses(sidecar.ask("late.example")) == [ANY_V4]

    write_config(path, upstream, domains={"block": ["pastebin.com", "late.example"]})
    sidecar.hup()
    wait_for(lambda: sidecar.dnsmasq_pid() != pid)
    wait_for(lambda: sidecar.answers("x.late.example") == ["198.51.100.1"])
    assert addresses(sidecar.ask("pastebin.com")) == ["198.51.100.1"]
    code, err = sidecar.stop()
    assert code == 0 and "dnsmasq restarted" in err


def test_sighup_with_a_broken_config_stops_dns(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    path = tmp_path / "cage.yaml"
    sidecar = start_sidecar(write_config(path, upstream))
    pid = sidecar.dnsmasq_pid()
    path.write_text(path.read_text() + "unknown_key: 1\n")
    sidecar.hup()
    code, err = sidecar.stop()
    assert code == 2 and "unknown_key" in err
    assert not _alive(pid)


def test_render_command_prints_a_config_dnsmasq_accepts(tmp_path: Path, upstream: FakeDns) -> None:
    config = write_config(tmp_path / "cage.yaml", upstream)
    result = _run_cli("dns", "render", "-c", str(config), "--listen", "127.0.0.1:5353")
    assert result.returncode == 0, result.stderr
    assert "address=/#/198.51.100.1" in result.stdout
    assert f"server=/allowed.example/127.0.0.1#{upstream.port}" in result.stdout


def test_audit_lines_go_to_stdout_alone_without_audit_log(
    tmp_path: Path, upstream: FakeDns
) -> None:
    config = write_config(tmp_path / "cage.yaml", upstream)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from agentcage.cli.main import main; main()",
         "dns", "run", "-c", str(config), "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: _answers(port, "stdout.allowed.example") == [ANY_V4], timeout=15)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert f"listening on 127.0.0.1:{port}" in err
    records = [json.loads(line) for line in out.splitlines()]
    assert records and all(r["kind"] == "dns" for r in records)
    assert "stdout.allowed.example" in {r["qname"] for r in records}


def test_sighup_reopens_the_audit_log(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    sidecar = start_sidecar(write_config(tmp_path / "cage.yaml", upstream))
    sidecar.ask("before.allowed.example")
    sidecar.record_for("before.allowed.example")
    rotated = sidecar.audit_log.with_suffix(".1")
    sidecar.audit_log.rename(rotated)
    sidecar.hup()
    wait_for(sidecar.audit_log.exists)
    sidecar.ask("after.allowed.example")
    assert sidecar.record_for("after.allowed.example")["verdict"] == "allow"
    assert "after.allowed.example" not in rotated.read_text()


def _answers(port: int, name: str) -> list[str] | None:
    try:
        return addresses(ask(port, name))
    except (OSError, dns.exception.Timeout):
        return None


def test_runs_without_root(upstream: FakeDns) -> None:
    # As root, run the sidecar as nobody; dnsmasq then must not be told to switch user.
    as_nobody = os.geteuid() == 0
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if as_nobody else []
    shared = Path(tempfile.mkdtemp(prefix="agentcage-dns-test-"))
    try:
        shared.chmod(0o777)  # readable config, writable audit log for the unprivileged user
        config = write_config(shared / "cage.yaml", upstream)
        config.chmod(0o644)
        sidecar = RunningSidecar(config, shared / "audit.jsonl", prefix=prefix)
        try:
            pid = sidecar.dnsmasq_pid()
            assert (
                f"Uid:\t{os.geteuid() if not as_nobody else 65534}"
                in Path(f"/proc/{pid}/status").read_text()
            )
            main = (_conf_dir(pid) / "dnsmasq.conf").read_text().splitlines()
            assert not any(line.startswith(("user=", "group=")) for line in main)
            assert addresses(sidecar.ask("unprivileged.allowed.example")) == [ANY_V4]
            assert sidecar.record_for("unprivileged.allowed.example")["verdict"] == "allow"
        finally:
            code, err = sidecar.stop()
        assert code == 0, err
    finally:
        shutil.rmtree(shared)


def test_listens_on_ipv6_loopback(tmp_path: Path, upstream: FakeDns) -> None:
    config = write_config(tmp_path / "cage.yaml", upstream)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from agentcage.cli.main import main; main()",
         "dns", "run", "-c", str(config), "--listen", f"[::1]:{port}",
         "--audit-log", str(tmp_path / "audit.jsonl")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:

        def answer() -> list[str] | None:
            query = dns.message.make_query("v6.allowed.example", "AAAA")
            try:
                return addresses(dns.query.udp(query, "::1", port=port, timeout=1))
            except (OSError, dns.exception.Timeout):
                return None

        assert wait_for(answer, timeout=15) == ["2001:db8::10"]
        # Bound to ::1 only: the IPv4 loopback gets nothing.
        assert _answers(port, "v4.allowed.example") is None
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0 and f"listening on [::1]:{port}" in err
    line = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[0])
    assert (line["qname"], line["client"]) == ("v6.allowed.example", "::1")


def test_tells_systemd_it_is_ready_once_it_answers(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `Notify=true`: the unit (and so the agent after it) starts on this READY=1, not on a
    # polled health check; it must come only once queries are answered.
    with NotifySocket(tmp_path) as notify:
        monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
        sidecar = start_sidecar(write_config(tmp_path / "cage.yaml", upstream))
        assert notify.receive() == b"READY=1"
        assert rcode(sidecar.ask("allowed.example")) == "NOERROR"


def test_queries_sent_at_ready_wait_to_be_judged(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    # READY=1 comes once the config is valid and the sockets are bound, before the query
    # engine loads (cli/dns_cmd.py). The agent's first queries may arrive before the
    # sidecar serves: they wait in the kernel and are judged, none refused or let through.
    port = free_port()
    config = write_config(tmp_path / "cage.yaml", upstream)
    started: list[RunningSidecar] = []
    with NotifySocket(tmp_path) as notify:
        monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
        starting = threading.Thread(target=lambda: started.append(start_sidecar(config, port)))
        starting.start()
        try:
            assert notify.receive() == b"READY=1"
            allowed = dns.message.make_query("allowed.example", "A")
            unlisted = dns.message.make_query("unlisted.example", "A")
            by_udp = dns.query.udp(allowed, "127.0.0.1", port=port, timeout=30)
            by_tcp = dns.query.tcp(unlisted, "127.0.0.1", port=port, timeout=30)
        finally:
            starting.join()
    assert rcode(by_udp) == "NOERROR" and addresses(by_udp)
    (sidecar,) = started
    assert sidecar.record_for("allowed.example")["verdict"] == "allow"
    assert sidecar.record_for("unlisted.example")["verdict"] == "block"
    assert addresses(by_tcp) == [str(SINKHOLE_V4)]


def _process_running(config: Path) -> int:
    """The pid of the `dns run` started on `config` (its object is not returned yet)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(config).encode() in argv and b"dns" in argv:
                return int(entry.name)
    raise AssertionError(f"no dns run on {config}")


def test_a_sighup_right_after_ready_is_a_reload_not_the_end(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `domain add` right after `cage create` may signal a sidecar that said READY=1 and
    # still loads its engine; SIGHUP's default action would end it, and in a microVM's
    # guest nothing restarts it. It must be applied once the sidecar serves.
    path = tmp_path / "cage.yaml"
    config = write_config(path, upstream)
    started: list[RunningSidecar] = []
    with NotifySocket(tmp_path) as notify:
        monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
        starting = threading.Thread(target=lambda: started.append(start_sidecar(config)))
        starting.start()
        try:
            assert notify.receive() == b"READY=1"
            write_config(path, upstream, domains={"allow": ["allowed.example", "new.example"]})
            os.kill(_process_running(config), signal.SIGHUP)
        finally:
            starting.join()
    (sidecar,) = started
    wait_for(lambda: sidecar.answers("api.new.example") == [ANY_V4])
    code, err = sidecar.stop()
    assert code == 0 and "reloaded the config" in err


def test_an_idle_sidecar_sleeps(tmp_path: Path, upstream: FakeDns, start_sidecar: Start) -> None:
    # Each wakeup of an idle sidecar costs CPU fifty times over on a host of fifty cages:
    # dnsmasq's exit wakes the loop through its closing stderr, so the loop need not poll
    # often, and the metrics server waits for a scrape instead of polling for shutdown.
    sidecar = start_sidecar(
        write_config(tmp_path / "cage.yaml", upstream),
        args=["--metrics", f"unix:{tmp_path / 'metrics.sock'}"],
    )
    assert rcode(sidecar.ask("allowed.example")) == "NOERROR"
    pid = sidecar.proc.pid

    def wakeups() -> int:
        total = 0
        for task in Path(f"/proc/{pid}/task").iterdir():
            status = (task / "status").read_text()
            total += int(status.split("voluntary_ctxt_switches:")[1].split()[0])
        return total

    time.sleep(0.5)
    before = wakeups()
    time.sleep(4)
    # At most one look at dnsmasq in 4 s; it was two, plus eight of the metrics server.
    assert wakeups() - before <= 1

"""`agentcage audit` on what a real `proxy run` wrote: table, filters, JSON, rotation, follow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.proxy.conftest import agent_client, rotating_proxy, start_proxy
from tests.support.fake_dns import FakeDns
from tests.support.proxy import ProxyProcess, agentcage_command
from tests.support.upstream import Upstream

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

COLUMNS = "TIME                       VERDICT  INSPECTOR         METHOD    HOST"


def run_audit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*agentcage_command(), "audit", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TZ": "UTC", **(env or {})},
        check=False,
    )


@pytest.fixture(scope="module")
def stopped(
    tmp_path_factory: pytest.TempPathFactory, fake_dns: FakeDns, upstream: Upstream
) -> Iterator[ProxyProcess]:
    """A proxy that served an allowed GET, a flagged POST and a blocked GET, then stopped."""
    proxy = start_proxy(tmp_path_factory.mktemp("viewed"), fake_dns, upstream, "rate_limit: false")
    base = f"https://api.anthropic.com:{upstream.tls_port}"
    try:
        with agent_client(proxy) as http:
            assert http.get(f"{base}/first?q=1").status_code == 200
            assert http.post(f"{base}/flagme", content=b"{}").status_code == 200
            assert http.get(f"https://attacker.example:{upstream.tls_port}/x").status_code == 403
    finally:
        assert proxy.stop() == 0, proxy.stderr
    yield proxy


def test_the_table_shows_each_decision_with_its_status_newest_last(stopped: ProxyProcess) -> None:
    shown = run_audit("--file", str(stopped.audit_path))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(COLUMNS)
    rows = [line.split() for line in lines[1:] if " conn " not in line]
    assert all(r[1].endswith("+00:00") for r in rows)  # local time (TZ=UTC here), with offset
    assert [(r[2], r[3], r[4], r[5], r[6]) for r in rows] == [
        ("allow", "GET", f"api.anthropic.com:{_port(stopped)}", "/first?q=1", "200"),
        ("flag", "tripwire", "POST", f"api.anthropic.com:{_port(stopped)}", "/flagme"),
        ("block", "domain", "GET", f"attacker.example:{_port(stopped)}", "/x"),
    ]
    assert rows[1][7] == "200"
    assert lines[-1].endswith(
        "attacker.example is not in the domain allowlist; add it to domains.allow "
        "(`agentcage domain add`) if the agent needs it"
    )


def _port(proxy: ProxyProcess) -> int:
    return int(next(r["port"] for r in proxy.audit() if r["kind"] == "http"))


def test_filters_select_by_verdict_host_inspector_and_time(stopped: ProxyProcess) -> None:
    log = str(stopped.audit_path)

    def hosts(*args: str) -> list[str]:
        result = run_audit("--file", log, "--json", *args)
        assert result.returncode == 0, result.stderr
        return [json.loads(line)["path"] for line in result.stdout.splitlines()]

    assert hosts("--blocked") == ["/x"]
    assert hosts("--flagged", "--blocked") == ["/flagme", "/flagme", "/x"]  # and its response
    assert hosts("--inspector", "domain") == ["/x"]
    assert hosts("--host", "anthropic.com", "--since", "1h") == [
        "/first?q=1",
        "/first?q=1",
        "/flagme",
        "/flagme",
    ]
    assert hosts("--since", "2999-01-01T00:00:00Z") == []
    assert hosts("--until", "2000-01-01T00:00:00+01:00") == []
    bad = run_audit("--file", log, "--since", "yesterday")
    assert bad.returncode == 2
    assert "error: 'yesterday' is not a time" in bad.stderr


def test_json_passes_the_lines_through_unchanged(stopped: ProxyProcess) -> None:
    shown = run_audit("--file", str(stopped.audit_path), "--json")
    assert shown.stdout == stopped.audit_text()


def test_a_cage_is_viewed_by_name_even_when_stopped(tmp_path: Path, stopped: ProxyProcess) -> None:
    home = tmp_path / "config"
    cage = home / "agentcage" / "deployments" / "itest"
    (cage / "audit" / "proxy").mkdir(parents=True)
    (cage / "config.json").write_text("{}")
    (cage / "audit" / "proxy" / "proxy.jsonl").write_text(stopped.audit_text())
    shown = run_audit("itest", "--blocked", env={"XDG_CONFIG_HOME": str(home)})
    assert shown.returncode == 0, shown.stderr
    assert [line.split()[3] for line in shown.stdout.splitlines()[1:]] == ["domain"]
    missing = run_audit("nosuch", env={"XDG_CONFIG_HOME": str(home)})
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: no cage named 'nosuch'\nhint: ")


def test_follow_prints_new_decisions_across_rotations(
    tmp_path: Path, fake_dns: FakeDns, upstream: Upstream
) -> None:
    proxy = rotating_proxy(tmp_path, fake_dns, upstream, 2048, 100)
    base = f"https://api.anthropic.com:{upstream.tls_port}"
    follower = subprocess.Popen(
        [*agentcage_command(), "audit", "--file", str(proxy.audit_path), "-f", "--json"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TZ": "UTC"},
        # A shell's background job inherits SIGINT ignored, and Python then never
        # turns it into KeyboardInterrupt: Ctrl-C is restored as a terminal gives it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    seen: list[dict[str, object]] = []
    reader = threading.Thread(
        target=lambda: seen.extend(json.loads(line) for line in follower.stdout or ()),
        daemon=True,
    )
    reader.start()
    try:
        with agent_client(proxy) as http:
            assert http.get(f"{base}/follow/start").status_code == 200
            _wait_for(lambda: "/follow/start" in _decided(seen))  # the follower is following
            for n in range(40):  # ~40 KiB of lines in 2 KiB files
                assert http.get(f"{base}/follow/{n}").status_code == 200
                time.sleep(0.02)
        _wait_for(lambda: len(_decided(seen)) >= 41)
    finally:
        follower.send_signal(signal.SIGINT)
        follower.wait(10)
        proxy.stop()
    assert _decided(seen) == ["/follow/start"] + [f"/follow/{n}" for n in range(40)]
    assert len(list(proxy.audit_path.parent.glob("audit.jsonl.*"))) > 10


def _wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


def _decided(records: list[dict[str, object]]) -> list[object]:
    return [r["path"] for r in records if r["kind"] == "http"]

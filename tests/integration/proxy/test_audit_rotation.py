"""Audit retention through the real proxy: rotation by size, and an alert when a line fails."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agentcage.audit.logfiles import generations
from tests.integration.proxy.conftest import agent_client, rotating_proxy, start_proxy
from tests.support.fake_dns import FakeDns
from tests.support.upstream import Upstream

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_the_audit_log_rotates_by_size_and_every_request_keeps_one_decision_line(
    tmp_path: Path, fake_dns: FakeDns, upstream: Upstream
) -> None:
    proxy = rotating_proxy(tmp_path, fake_dns, upstream, 4096, 200)
    base = f"https://api.anthropic.com:{upstream.tls_port}"
    try:
        with agent_client(proxy) as http, ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda n: http.get(f"{base}/n/{n}").status_code, range(80)))
            blocked = http.get(f"https://attacker.example:{upstream.tls_port}/x").status_code
    finally:
        assert proxy.stop() == 0, proxy.stderr
    assert statuses == [200] * 80 and blocked == 403
    files = generations(proxy.audit_path)
    assert len(files) > 10
    assert all(path.stat().st_size <= 4096 for path in files)
    records = [json.loads(line) for path in files for line in path.read_text().splitlines()]
    for kind in ("http", "response"):
        paths = sorted(r["path"] for r in records if r["kind"] == kind and r["path"] != "/x")
        assert paths == sorted(f"/n/{n}" for n in range(80)), kind
    assert [r["host"] for r in records if r["verdict"] == "block"] == ["attacker.example"]


def test_a_failed_audit_write_is_told_in_the_proxy_log(
    tmp_path: Path, fake_dns: FakeDns, upstream: Upstream
) -> None:
    (tmp_path / "audit.jsonl").symlink_to("/dev/full")  # every write fails with ENOSPC
    proxy = start_proxy(tmp_path, fake_dns, upstream, "rate_limit: false")
    try:
        with agent_client(proxy) as http:
            refused = http.get(f"https://api.anthropic.com:{upstream.tls_port}/full")
    finally:
        proxy.stop()
    assert refused.status_code == 503
    assert refused.json()["inspector"] == "audit"
    alerts = [line for line in proxy.stderr_lines if "ALERT" in line]
    assert len(alerts) == 1, proxy.stderr  # the block's own line fails too: one alert
    assert (
        f"ALERT: cannot write the audit log {tmp_path / 'audit.jsonl'}: No space left on device; "
        "requests are refused until it can be written" in alerts[0]
    )

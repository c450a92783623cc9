"""Prometheus metrics of a real `proxy run`, scraped over HTTP and parsed by prometheus_client."""

from __future__ import annotations

import re
import signal
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agentcage.config import policy_version
from agentcage.metrics.scrape import MetricsUnreachable, scrape_unix
from tests.integration.proxy.conftest import PLACEHOLDER, REAL_KEY, agent_client, start_proxy
from tests.support.dns_sidecar import wait_for
from tests.support.fake_dns import FakeDns
from tests.support.proxy import ProxyProcess, agentcage_command
from tests.support.upstream import Upstream

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
SERVED = re.compile(r"metrics on (http://\S+/metrics)")
TIGHT_WRITES = "rate_limit:\n  writes: {per_second: 0.01, burst: 3}"


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str, transport: httpx.HTTPTransport | None = None) -> Samples:
    with httpx.Client(transport=transport, timeout=5) as client:
        text = client.get(url).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metered(tmp_path: Path, fake_dns: FakeDns, upstream: Upstream) -> Iterator[ProxyProcess]:
    """A proxy that does not log allowed requests, serving metrics on a loopback port."""
    proxy = start_proxy(tmp_path, fake_dns, upstream, TIGHT_WRITES, log_allowed=False)
    proxy.stop()
    proxy.args += ["--metrics", "127.0.0.1:0"]
    proxy.start()
    try:
        yield proxy
    finally:
        assert proxy.stop() == 0, proxy.stderr


def test_a_scrape_counts_decisions_bytes_budgets_and_injections(
    metered: ProxyProcess, upstream: Upstream
) -> None:
    (url,) = SERVED.findall(metered.stderr)
    assert url.startswith("http://127.0.0.1:")
    base = f"https://api.anthropic.com:{upstream.tls_port}"
    with agent_client(metered) as http:
        assert http.get(f"{base}/a", headers={"x-api-key": PLACEHOLDER}).status_code == 200
        statuses = [http.post(f"{base}/reflect", content=b"12345").status_code for _ in range(4)]
        assert http.get(f"https://attacker.example:{upstream.tls_port}/x").status_code == 403
        assert http.get(f"{base}/flagme").status_code == 200
    assert statuses == [200, 200, 200, 429]
    samples = scrape(url)
    requests = "agentcage_proxy_requests_total"
    host = "api.anthropic.com"
    # Allowed requests are not in the audit log here, and are counted all the same.
    assert value(samples, requests, verdict="allow", inspector="none", host=host) == 4
    assert value(samples, requests, verdict="flag", inspector="tripwire", host=host) == 1
    assert value(samples, requests, verdict="block", inspector="rate-limit", host=host) == 1
    # A blocked host never gets a label of its own: the agent cannot grow the set.
    assert value(samples, requests, verdict="block", inspector="domain", host="other") == 1
    assert value(samples, "agentcage_proxy_rate_limited_total", budget="writes") == 1
    assert value(samples, "agentcage_proxy_injected_secrets_total", secret="ANTHROPIC_API_KEY") == 1
    assert value(samples, "agentcage_proxy_bytes_total", direction="to_upstream") == 15
    assert value(samples, "agentcage_proxy_bytes_total", direction="to_agent") >= 15
    assert value(samples, "agentcage_proxy_inspection_seconds_count") == 7
    assert value(samples, "agentcage_proxy_audit_write_errors_total") == 0
    assert value(samples, "process_resident_memory_bytes") > 0
    assert REAL_KEY not in httpx.get(url, timeout=5).text


def test_metrics_on_a_unix_socket_are_for_its_owner_only(
    tmp_path: Path, fake_dns: FakeDns, upstream: Upstream
) -> None:
    socket_path = tmp_path / "metrics.sock"
    proxy = start_proxy(tmp_path, fake_dns, upstream, "rate_limit: false")
    proxy.stop()
    proxy.args += ["--metrics", f"unix:{socket_path}"]
    proxy.start()
    try:
        assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600
        with agent_client(proxy) as http:
            http.get(f"https://github.com:{upstream.tls_port}/x")
        samples = scrape("http://localhost/metrics", httpx.HTTPTransport(uds=str(socket_path)))
        key = {"verdict": "allow", "inspector": "none", "host": "github.com"}
        assert value(samples, "agentcage_proxy_requests_total", **key) == 1
    finally:
        assert proxy.stop() == 0
    assert not socket_path.exists()


def test_a_cage_socket_is_open_to_all_and_read_by_the_status_scraper(
    tmp_path: Path, fake_dns: FakeDns, upstream: Upstream
) -> None:
    """As a cage runs it: mode 0666 (the directory guards it), read with `scrape_unix`."""
    socket_path = tmp_path / "proxy.sock"
    proxy = start_proxy(tmp_path, fake_dns, upstream, "rate_limit: false")
    proxy.stop()
    proxy.args += ["--metrics", f"unix:{socket_path}", "--metrics-socket-mode", "0666"]
    proxy.start()
    try:
        assert stat.S_IMODE(socket_path.stat().st_mode) == 0o666
        with agent_client(proxy) as http:
            http.get(f"https://github.com:{upstream.tls_port}/x")
            http.get(f"https://attacker.example:{upstream.tls_port}/x")
        samples = scrape_unix(socket_path)
        last_hour = "agentcage_proxy_requests_last_hour"
        assert samples.total(last_hour, verdict="allow") == 1
        assert samples.total(last_hour, verdict="block") == 1
        assert samples.total(last_hour, verdict="flag") == 0
        assert samples.label_values("agentcage_proxy_policy_info", "version") == [
            policy_version(proxy.config)
        ]
        # A reload serves the new file's version.
        proxy.config.write_text(proxy.config.read_text() + "\n# changed\n")
        proxy.signal(signal.SIGHUP)
        wait_for(lambda: "reloaded" in proxy.stderr)
        versions = scrape_unix(socket_path).label_values("agentcage_proxy_policy_info", "version")
        assert versions == [policy_version(proxy.config)]
    finally:
        assert proxy.stop() == 0
    with pytest.raises(MetricsUnreachable, match="no metrics socket"):
        scrape_unix(socket_path)


def test_a_socket_mode_needs_a_socket(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("name: m\ncontainer: {image: docker.io/library/python:3.12-slim}\n")
    done = subprocess.run(
        [*agentcage_command(), "proxy", "run", "-c", str(config), "--metrics", "127.0.0.1:0",
         "--metrics-socket-mode", "0666"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "a socket mode applies to unix:PATH" in done.stderr


def test_metrics_are_never_served_beyond_loopback(tmp_path: Path) -> None:
    endpoint = "0.0.0.0:9464"  # every address: the agent's network too (more in unit tests)
    config = tmp_path / "c.yaml"
    config.write_text("name: m\ncontainer: {image: docker.io/library/python:3.12-slim}\n")
    done = subprocess.run(
        [*agentcage_command(), "proxy", "run", "-c", str(config), "--metrics", endpoint],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: --metrics {endpoint!r}: ")

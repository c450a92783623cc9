"""Prometheus metrics of a real `dns run`, scraped over HTTP and parsed by prometheus_client."""

from __future__ import annotations

import base64
import random
import re
import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.support.dns_sidecar import RunningSidecar, wait_for, write_config
from tests.support.fake_dns import FakeDns

from agentcage.cage.probe import dns_ready
from agentcage.config import policy_version
from agentcage.dns.sidecar import HEALTH_PROBE_NAME
from agentcage.metrics.scrape import scrape_unix

pytestmark = pytest.mark.integration


def test_a_scrape_counts_queries_by_answer_and_tunnel_blocks(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Callable[..., RunningSidecar]
) -> None:
    config = write_config(
        tmp_path / "cage.yaml",
        upstream,
        logging={"dns_queries": "none"},  # counted whatever is logged
        dns={"tunnel_action": "block"},
    )
    sidecar = start_sidecar(config, args=["--metrics", "127.0.0.1:0"])
    (url,) = re.findall(r"metrics on (http://\S+/metrics)", sidecar.stderr_text())
    tunnel = base64.b32encode(random.Random(3).randbytes(38)).decode().lower().rstrip("=")
    for name, qtype in [
        ("a.allowed.example", "A"),
        ("b.allowed.example", "A"),
        ("evil.example", "A"),
        ("evil.example", "TXT"),
        (f"{tunnel}.workers.dev", "A"),
        ("x.workers.dev", "A"),
    ]:
        sidecar.ask(name, qtype)
    text = httpx.get(url, timeout=5).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def queries(answer: str, verdict: str, inspector: str) -> float:
        labels = (("answer", answer), ("inspector", inspector), ("verdict", verdict))
        return samples.get(("agentcage_dns_queries_total", labels), 0.0)

    assert queries("forward", "allow", "dns-domains") == 2
    assert queries("sinkhole", "block", "dns-domains") == 1
    assert queries("refused", "block", "dns-domains") == 1
    assert queries("refused", "block", "dns-tunnel") == 2  # the tunnel, then its zone
    assert samples[("agentcage_dns_tunnel_blocks_total", ())] == 1
    assert samples[("agentcage_dns_blocked_zones", ())] == 1
    assert samples[("agentcage_dns_audit_write_errors_total", ())] == 0
    assert sidecar.stop()[0] == 0


def test_the_status_scraper_reads_the_last_hour_and_the_policy_version(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Callable[..., RunningSidecar]
) -> None:
    config = write_config(tmp_path / "cage.yaml", upstream)
    socket_path = tmp_path / "dns.sock"
    args = ["--metrics", f"unix:{socket_path}", "--metrics-socket-mode", "0660"]
    sidecar = start_sidecar(config, args=args)
    assert stat.S_IMODE(socket_path.stat().st_mode) == 0o660
    sidecar.ask("a.allowed.example")
    sidecar.ask("evil.example")
    sidecar.ask("evil.example", "TXT")
    # The sidecar's own health check, from its own address: refused, not counted.
    assert dns_ready("127.0.0.1", sidecar.port, HEALTH_PROBE_NAME)
    samples = scrape_unix(socket_path)
    assert samples.total("agentcage_dns_queries_last_hour", verdict="allow") == 1
    assert samples.total("agentcage_dns_queries_last_hour", verdict="block") == 2
    version = samples.label_values("agentcage_dns_policy_info", "version")
    assert version == [policy_version(config)]
    config.write_text(config.read_text() + "# changed\n")
    sidecar.hup()
    wait_for(
        lambda: (
            scrape_unix(socket_path).label_values("agentcage_dns_policy_info", "version")
            == [policy_version(config)]
        )
    )
    assert sidecar.stop()[0] == 0

"""Where metrics may be served, and label sets an agent cannot grow."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter

from agentcage.errors import ConfigError
from agentcage.metrics.exposition import MetricsEndpoint, MetricsServer
from agentcage.metrics.labels import OTHER, BoundedLabel


@pytest.mark.parametrize(
    ("text", "endpoint"),
    [
        ("9464", MetricsEndpoint("127.0.0.1", 9464)),
        (":0", MetricsEndpoint("127.0.0.1", 0)),
        ("127.0.0.2:9464", MetricsEndpoint("127.0.0.2", 9464)),
        ("[::1]:9464", MetricsEndpoint("::1", 9464)),
        ("localhost:1", MetricsEndpoint("localhost", 1)),
        ("unix:/run/m.sock", MetricsEndpoint(socket_path=Path("/run/m.sock"))),
    ],
)
def test_loopback_ports_and_unix_sockets_are_accepted(text: str, endpoint: MetricsEndpoint) -> None:
    assert MetricsEndpoint.parse(text) == endpoint


@pytest.mark.parametrize(
    "text",
    ["0.0.0.0:9464", "[::]:9464", "10.89.0.2:9464", "example.com:80", "x", "1:99999", "unix:"],
)
def test_anything_the_agent_could_reach_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(f"--metrics {text!r}: ")):
        MetricsEndpoint.parse(text)


def test_only_admitted_values_take_one_of_the_places() -> None:
    hosts = BoundedLabel(2)
    assert hosts.of("evil.example", admit=False) == OTHER
    assert [hosts.of(h) for h in ("a.example", "b.example", "c.example")] == [
        "a.example",
        "b.example",
        OTHER,
    ]
    assert hosts.of("a.example", admit=False) == "a.example"  # known: keeps its name


def _wakeups(thread: threading.Thread) -> int:
    """How often the kernel switched `thread` out because it waited (it slept, then woke)."""
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    return int(re.search(r"voluntary_ctxt_switches:\s+(\d+)", status).group(1))  # type: ignore[union-attr]


def test_an_idle_metrics_server_sleeps_until_a_scrape_or_close(tmp_path: Path) -> None:
    # With fifty cages, two servers each waking twice a second (serve_forever's poll
    # for a shutdown request) was a tenth of a core's idle time.
    registry = CollectorRegistry()
    Counter("scrapes_seen", "a counter to serve", registry=registry).inc()
    server = MetricsServer(registry, MetricsEndpoint(socket_path=tmp_path / "m.sock"))
    thread = next(t for t in threading.enumerate() if t.name == "agentcage-metrics")
    time.sleep(0.2)  # settles into its wait
    before = _wakeups(thread)
    time.sleep(1.5)
    assert _wakeups(thread) == before
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(str(tmp_path / "m.sock"))
        client.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        reply = b"".join(iter(lambda: client.recv(65536), b""))
    assert b"scrapes_seen_total 1.0" in reply
    server.close()  # returns: the wait ends on close, not on a poll
    assert not thread.is_alive() and not (tmp_path / "m.sock").exists()

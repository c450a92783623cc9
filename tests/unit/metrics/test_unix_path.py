"""Socket paths past the kernel's 107 bytes still serve and scrape (a cage's often are)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter

from agentcage.metrics.exposition import MetricsEndpoint, MetricsServer
from agentcage.metrics.scrape import scrape_unix
from agentcage.metrics.unix_path import MAX_BYTES, addressable


def test_a_short_path_is_used_as_it_is(tmp_path: Path) -> None:
    with addressable(tmp_path / "m.sock") as name:
        assert name == str(tmp_path / "m.sock")


def test_a_long_socket_path_is_served_and_scraped(tmp_path: Path) -> None:
    directory = tmp_path / ("d" * 60) / ("e" * 60)
    directory.mkdir(parents=True)
    path = directory / "proxy.sock"
    assert len(os.fsencode(path)) > MAX_BYTES
    registry = CollectorRegistry()
    Counter("x_total", "doc", registry=registry).inc(3)
    server = MetricsServer(registry, MetricsEndpoint(socket_path=path, socket_mode=0o666))
    try:
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o666
        assert scrape_unix(path).total("x_total") == 3
    finally:
        server.close()
    assert not path.exists()

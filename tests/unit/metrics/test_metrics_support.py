"""Where metrics may be served, and label sets an agent cannot grow."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentcage.errors import ConfigError
from agentcage.metrics.exposition import MetricsEndpoint
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

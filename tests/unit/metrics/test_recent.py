"""The last hour's decisions by verdict, in one-minute buckets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from agentcage.metrics.recent import RecentVerdicts


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000 * 60.0

    def __call__(self) -> float:
        return self.now


def test_a_decision_counts_for_an_hour_then_drops_out() -> None:
    clock = Clock()
    recent = RecentVerdicts("x_last_hour", "doc", CollectorRegistry(), clock)
    recent.add("block")
    clock.now += 30 * 60
    recent.add("allow")
    recent.add("flag")
    recent.add("would-be-anything-else")  # not a verdict: ignored, not a new label
    assert recent.counts() == {"allow": 1, "flag": 1, "block": 1}
    clock.now += 30 * 60  # the first minute is now 60 minutes old
    assert recent.counts() == {"allow": 1, "flag": 1, "block": 0}
    clock.now += 30 * 60
    assert recent.counts() == {"allow": 0, "flag": 0, "block": 0}


def test_the_gauge_is_computed_at_scrape_time() -> None:
    clock = Clock()
    registry = CollectorRegistry()
    recent = RecentVerdicts("x_last_hour", "doc", registry, clock)
    for _ in range(3):
        recent.add("allow")
    text = generate_latest(registry).decode()
    assert 'x_last_hour{verdict="allow"} 3.0' in text
    assert 'x_last_hour{verdict="block"} 0.0' in text
    clock.now += 3600
    assert 'x_last_hour{verdict="allow"} 0.0' in generate_latest(registry).decode()

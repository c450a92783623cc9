"""LineBudget: at most `lines` lines per source per window, the rest counted once."""

from __future__ import annotations

from agentcage.audit.throttle import LineBudget


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_source_gets_its_lines_then_a_count_when_the_window_ends() -> None:
    clock = Clock()
    budget = LineBudget(lines=3, window=10.0, clock=clock)
    assert [budget.admit("10.0.0.9") for _ in range(1000)].count(True) == 3
    assert budget.ended() == []  # the window is still open
    clock.now += 10.0
    assert budget.ended() == [("10.0.0.9", 997)]
    assert budget.ended() == []  # handed back once
    assert budget.admit("10.0.0.9")  # a new window


def test_sources_are_counted_apart() -> None:
    clock = Clock()
    budget = LineBudget(lines=1, window=1.0, clock=clock)
    assert budget.admit("a") and budget.admit("b")
    assert not budget.admit("a")
    clock.now += 1.0
    assert budget.ended() == [("a", 1)]


def test_a_window_without_suppressed_lines_ends_silently() -> None:
    clock = Clock()
    budget = LineBudget(lines=5, window=1.0, clock=clock)
    budget.admit("a")
    clock.now += 5.0
    assert budget.ended() == []


def test_many_sources_do_not_grow_it_without_bound() -> None:
    clock = Clock()
    budget = LineBudget(lines=1, window=1.0, clock=clock, max_sources=2)
    assert budget.admit("a") and budget.admit("b")
    assert not budget.admit("c")  # counted under the oldest source
    clock.now += 1.0
    assert budget.ended() == [("a", 1)]

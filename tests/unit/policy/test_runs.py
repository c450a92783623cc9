from __future__ import annotations

from agentcage.policy.runs import byte_table, long_runs, windows

TABLE = byte_table(b"abc")


def test_runs_at_edges_and_in_the_middle() -> None:
    data = b"aaaa-bb-cccccc-abcab"
    assert list(long_runs(data, TABLE, 4)) == [(0, 4), (8, 14), (15, 20)]
    assert list(long_runs(data, TABLE, 7)) == []
    assert list(long_runs(b"", TABLE, 1)) == []


def test_a_run_longer_than_the_needle_is_reported_once() -> None:
    data = b"-" * 10 + b"a" * 1000 + b"-"
    assert list(long_runs(data, TABLE, 20)) == [(10, 1010)]


def test_windows_widen_and_merge() -> None:
    data = b"aaaa" + b"-" * 3 + b"bbbb" + b"-" * 40 + b"cccc"
    assert windows(data, TABLE, 4, before=2, after=2) == [(0, 13), (49, 55)]


def test_giant_runs_contribute_head_and_tail_only() -> None:
    data = b"-" + b"a" * 10_000 + b"-"
    assert windows(data, TABLE, 4, before=1, after=1, max_run=100) == [(0, 102), (9_900, 10_002)]
    assert windows(data, TABLE, 4, before=1, after=1, max_run=6_000) == [(0, 10_002)]

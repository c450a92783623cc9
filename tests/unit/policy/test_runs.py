from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from agentcage.policy.runs import BASE64_TABLE, byte_table, long_runs, token_runs, windows

TABLE = byte_table(b"abc")


def test_runs_at_edges_and_in_the_middle() -> None:
    data = b"aaaa-bb-cccccc-abcab"
    assert list(long_runs(data, TABLE, 4)) == [(0, 4), (8, 14), (15, 20)]
    assert list(long_runs(data, TABLE, 7)) == []
    assert list(long_runs(b"", TABLE, 1)) == []


def test_a_run_longer_than_the_needle_is_reported_once() -> None:
    data = b"-" * 10 + b"a" * 1000 + b"-"
    assert list(long_runs(data, TABLE, 20)) == [(10, 1010)]


_STRETCHES = st.lists(st.tuples(st.sampled_from([b"a", b"-", b" "]), st.integers(1, 150)))


@settings(max_examples=300, deadline=None)
@given(_STRETCHES.map(lambda parts: b"".join(symbol * count for symbol, count in parts)))
def test_runs_are_the_maximal_stretches_a_regex_finds(data: bytes) -> None:
    for min_len in (1, 3, 16, 63, 64, 100):
        expected = [m.span() for m in re.finditer(rb"a{%d,}" % min_len, data)]
        assert list(long_runs(data, TABLE, min_len)) == expected


def test_token_runs_of_one_payload_are_found_once_and_filtered_per_caller() -> None:
    short, long = b"Q" * 16, b"Z" * 40
    data = (b"text, " * 1000) + short + b" " + long + b"."
    first = token_runs(data, 16)
    assert first == [(6000, 6016), (6017, 6057)]
    assert token_runs(data, 20) == [(6017, 6057)]
    assert token_runs(data, 8) == list(long_runs(data, BASE64_TABLE, 8))
    # An equal payload in another object is searched again, not taken on trust.
    other = bytes(bytearray(data).replace(b"Q" * 16, b"." * 16))
    assert token_runs(other, 16) == [(6017, 6057)]


def test_windows_widen_and_merge() -> None:
    data = b"aaaaaaaaaaaaaaaa" + b" " * 3 + b"bbbbbbbbbbbbbbbb" + b" " * 40 + b"cccccccccccccccc"
    assert windows(data, 16, before=2, after=2) == [(0, 37), (73, 91)]


def test_giant_runs_contribute_head_and_tail_only() -> None:
    data = b" " + b"a" * 10_000 + b" "
    assert windows(data, 16, before=1, after=1, max_run=100) == [(0, 102), (9_900, 10_002)]
    assert windows(data, 16, before=1, after=1, max_run=6_000) == [(0, 10_002)]

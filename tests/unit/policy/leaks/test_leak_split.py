from __future__ import annotations

import base64

import pytest

from agentcage.policy.leaks import Protected, SplitDetector, WindowLimits

from .conftest import ANTHROPIC, GITHUB


@pytest.fixture
def split() -> SplitDetector:
    secrets = [Protected("A", ANTHROPIC, "injected"), Protected("G", GITHUB, "known")]
    return SplitDetector(secrets, WindowLimits(max_age=60, max_pieces=64))


def _chunks(value: bytes, size: int) -> list[bytes]:
    return [value[i : i + size] for i in range(0, len(value), size)]


def test_a_secret_sent_eight_characters_at_a_time_is_caught(split: SplitDetector) -> None:
    results = [
        split.observe("evil.com", [piece], now=float(i))
        for i, piece in enumerate(_chunks(GITHUB, 8))
    ]
    assert not any(results[:3])
    assert results[-1] and results[-1][0].secret.name == "G"
    assert results[-1][0].technique == "split:raw"


def test_pieces_of_an_encoded_secret_are_caught(split: SplitDetector) -> None:
    encoded = base64.b64encode(b"xx" + ANTHROPIC)
    hits = [split.observe("evil.com", [p], now=0.0) for p in _chunks(encoded, 10)]
    assert any(hits)


def test_pieces_spread_over_several_domains_complete_in_the_cage_window(
    split: SplitDetector,
) -> None:
    results = [
        split.observe(f"host{i % 3}.example", [piece], now=0.0)
        for i, piece in enumerate(_chunks(GITHUB, 8))
    ]
    assert not any(results[:3])
    assert results[-1] and results[-1][0].secret.name == "G"


def test_pieces_sent_where_the_value_may_go_do_not_count_in_the_cage_window() -> None:
    split = SplitDetector([Protected("G", GITHUB, "known", allowed_hosts=("github.com",))])
    pieces = _chunks(GITHUB, 8)
    for piece in pieces[:3]:
        assert split.observe("github.com", [piece], now=0.0, host="api.github.com") == []
    for piece in pieces[3:]:
        assert split.observe("other.example", [piece], now=0.0) == []


def test_plain_words_do_not_count_in_the_cage_window() -> None:
    password = b"ember-quartz-violet-maple"
    split = SplitDetector([Protected("P", password, "known")])
    for n, word in enumerate([b"ember", b"quartz", b"violet", b"maple"]):
        assert split.observe(f"site{n}.example", [word], now=0.0) == []


def test_a_completed_value_is_forgotten_by_the_cage_window(split: SplitDetector) -> None:
    pieces = _chunks(GITHUB, 8)
    for i, piece in enumerate(pieces):
        split.observe(f"host{i % 3}.example", [piece], now=0.0)
    assert split.observe("late.example", [pieces[0]], now=1.0) == []


def test_pieces_older_than_the_window_are_forgotten(split: SplitDetector) -> None:
    for i, piece in enumerate(_chunks(GITHUB, 8)):
        assert split.observe("evil.com", [piece], now=i * 100.0) == []


def test_the_window_holds_a_bounded_number_of_pieces() -> None:
    split = SplitDetector([Protected("G", GITHUB, "known")], WindowLimits(max_pieces=2))
    for piece in _chunks(GITHUB, 8):
        assert split.observe("evil.com", [piece], now=0.0) == []


def test_the_number_of_destinations_is_bounded() -> None:
    words = b"orbitmapleemberquartzvioletstaplehorse!!"  # pieces of words: no cage window
    split = SplitDetector([Protected("W", words, "known")], WindowLimits(max_destinations=2))
    pieces = _chunks(words, 8)
    split.observe("a.com", pieces[:2], now=0.0)
    split.observe("b.com", pieces[4:], now=0.0)
    split.observe("c.com", pieces[:1], now=0.0)  # evicts a.com
    assert split.observe("a.com", pieces[2:], now=0.0) == []


def test_short_and_unrelated_pieces_are_ignored(split: SplitDetector) -> None:
    noise = [b"ghp_", b"v1", b"messages", b"application", b"json", b"2024-01-01", b"true"]
    for i in range(200):
        assert split.observe("api.example.com", noise, now=float(i)) == []


def test_a_short_value_whose_last_piece_is_too_short_to_record_is_still_caught() -> None:
    password = b"ember-quartz-ember38!"  # canonical: 18 characters
    split = SplitDetector([Protected("P", password, "known")], WindowLimits(min_piece=6))
    pieces = _chunks(password, 8)  # the last, "er38!", is under min_piece
    results = [split.observe("evil.com", [p], now=0.0) for p in pieces]
    assert results[1] and results[1][0].secret.name == "P"

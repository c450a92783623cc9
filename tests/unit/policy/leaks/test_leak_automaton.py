"""The automaton behind the leak matcher and scrubber: what each search promises."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agentcage.policy.leaks.automaton import Automaton


def _over_alphabet(data: bytes) -> bytes:
    return bytes(_ALPHABET[byte % len(_ALPHABET)] for byte in data)


def test_overlapping_search_reports_a_pattern_inside_a_longer_one() -> None:
    # The fast leftmost search sees only "abcdefgh"; the full walk must still run.
    auto = Automaton([(b"abcdefgh", "long"), (b"cdef", "inner"), (b"efghij", "tail")])
    hits = sorted((start, end, labels) for start, end, labels in auto.search(b"xxabcdefghijyy"))
    assert hits == [(2, 10, ("long",)), (4, 8, ("inner",)), (6, 12, ("tail",))]


def test_overlapping_search_of_text_without_patterns_is_empty() -> None:
    auto = Automaton([(b"secret-value", 1)])
    assert list(auto.search(b"nothing to see " * 1000)) == []
    assert list(auto.search(b"")) == []
    assert b"a secret-value here" in auto
    assert b"a secret value here" not in auto


def test_longest_search_replaces_leftmost_longest_without_overlap() -> None:
    auto = Automaton([(b"abc", "short"), (b"abcdef", "long"), (b"def", "other"), (b"efg", "e")])
    hits = list(auto.search_longest(b"..abcdefg..abc"))
    assert hits == [(2, 8, ("long",)), (11, 14, ("short",))]


def test_labels_of_one_key_are_kept_together() -> None:
    auto = Automaton([(b"same-key", 1), (b"same-key", 2), (b"", 3)])
    assert len(auto) == 1
    assert auto.longest == len(b"same-key")
    assert list(auto.search(b"the same-key")) == [(4, 12, (1, 2))]


def test_an_empty_automaton_finds_nothing() -> None:
    auto: Automaton[int] = Automaton([])
    assert len(auto) == 0
    assert list(auto.search(b"anything")) == []
    assert list(auto.search_longest(b"anything")) == []
    assert b"anything" not in auto


_ALPHABET = b"abcd"


@settings(max_examples=300, deadline=None)
@given(
    keys=st.lists(st.binary(min_size=1, max_size=6).map(_over_alphabet), min_size=1, max_size=6),
    haystack=st.binary(max_size=200).map(_over_alphabet),
)
def test_overlapping_search_near_leftmost_matches_finds_every_occurrence(
    keys: list[bytes], haystack: bytes
) -> None:
    # A small alphabet makes overlaps, nesting and chains of matches common.
    auto = Automaton([(key, key) for key in keys])
    expected = sorted(
        (start, start + len(key), key)
        for key in set(keys)
        for start in range(len(haystack))
        if haystack.startswith(key, start)
    )
    found = sorted((start, end, labels[0]) for start, end, labels in auto.search(haystack))
    assert found == expected

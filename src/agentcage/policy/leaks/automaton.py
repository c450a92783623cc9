"""A typed multi-pattern matcher over bytes (Aho-Corasick, one pass per haystack).

Backed by `ahocorasick_rs.BytesAhoCorasick` (Rust): it searches bytes directly, with
no latin-1 copy of the haystack, and its leftmost search uses a SIMD prefilter that
skips text no pattern can start in, about 50x faster than a plain automaton walk on
ordinary bodies. An overlapping search walks the full automaton only near what the
fast leftmost search found: a placeholder in one header must not cost a walk over
the whole megabyte body behind it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

import ahocorasick_rs

T = TypeVar("T")


class Automaton(Generic[T]):
    """Byte patterns -> labels; built once, searched many times, never mutated."""

    def __init__(self, patterns: Iterable[tuple[bytes, T]], *, dfa: bool = False) -> None:
        """`dfa`: build the leftmost search as a DFA too, 2-3x faster on text where the
        prefilter finds many candidates (short patterns), at a memory cost that grows
        with the patterns' total length: for small pattern sets only."""
        labels: dict[bytes, list[T]] = {}
        for key, label in patterns:
            if key:
                labels.setdefault(key, []).append(label)
        self._keys = list(labels)
        self._labels = [tuple(labels[key]) for key in self._keys]
        self._longest = max((len(key) for key in self._keys), default=0)
        self._all: ahocorasick_rs.BytesAhoCorasick | None = None
        self._leftmost: ahocorasick_rs.BytesAhoCorasick | None = None
        if self._keys:
            # Walked only near what the leftmost search found, so its speed matters
            # little; as a DFA it took four times the memory (50 MiB for 100 values).
            self._all = ahocorasick_rs.BytesAhoCorasick(
                self._keys, implementation=ahocorasick_rs.Implementation.ContiguousNFA
            )
            self._leftmost = ahocorasick_rs.BytesAhoCorasick(
                self._keys,
                matchkind=ahocorasick_rs.MatchKind.LeftmostLongest,
                implementation=ahocorasick_rs.Implementation.DFA if dfa else None,
            )

    @property
    def longest(self) -> int:
        """Length of the longest pattern (stream scrubbers keep this much tail)."""
        return self._longest

    def __len__(self) -> int:
        return len(self._keys)

    def keys(self) -> list[bytes]:
        return list(self._keys)

    def __contains__(self, haystack: bytes) -> bool:
        """Whether any pattern occurs in `haystack` (the fast prefiltered search)."""
        return bool(self._first(haystack))

    def search(self, haystack: bytes) -> Iterator[tuple[int, int, tuple[T, ...]]]:
        """Yield (start, end, labels) for every occurrence, overlapping ones included.

        Every occurrence lies within `longest` bytes after the start of some leftmost
        match: the leftmost search resumes at each match's end, so an occurrence
        starting at `s` is either reported or starts inside a reported match
        [start, end), and then ends before `end + longest`.
        """
        if self._all is None or self._leftmost is None or not haystack:
            return
        view = memoryview(haystack)
        for lo, hi in self._windows(haystack):
            found = self._all.find_matches_as_indexes(view[lo:hi], overlapping=True)
            for index, start, end in found:
                yield lo + start, lo + end, self._labels[index]

    def _windows(self, haystack: bytes) -> list[tuple[int, int]]:
        assert self._leftmost is not None
        merged: list[tuple[int, int]] = []
        for _index, start, end in self._leftmost.find_matches_as_indexes(haystack):
            hi = min(end + self._longest, len(haystack))
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
            else:
                merged.append((start, hi))
        return merged

    def search_longest(self, haystack: bytes) -> Iterator[tuple[int, int, tuple[T, ...]]]:
        """Yield non-overlapping occurrences, leftmost-longest first (for replacing)."""
        if self._leftmost is None or len(haystack) == 0:
            return
        for index, start, end in self._leftmost.find_matches_as_indexes(haystack):
            yield start, end, self._labels[index]

    def _first(self, haystack: bytes) -> bool:
        # Any occurrence at all makes the leftmost search report one.
        if self._leftmost is None or len(haystack) == 0:
            return False
        return bool(self._leftmost.find_matches_as_indexes(haystack))

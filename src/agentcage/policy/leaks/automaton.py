"""A typed multi-pattern matcher over bytes (Aho-Corasick, one pass per haystack).

`pyahocorasick` works on `str`; bytes are mapped 1:1 onto code points 0-255 with
latin-1, so offsets are byte offsets and any byte sequence is a valid key.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

import ahocorasick

T = TypeVar("T")


class Automaton(Generic[T]):
    """Byte patterns -> labels; built once, searched many times, never mutated."""

    def __init__(self, patterns: Iterable[tuple[bytes, T]]) -> None:
        labels: dict[bytes, list[T]] = {}
        for key, label in patterns:
            if key:
                labels.setdefault(key, []).append(label)
        self._longest = max((len(key) for key in labels), default=0)
        self._size = len(labels)
        self._auto: Any = ahocorasick.Automaton()
        for key, found in labels.items():
            self._auto.add_word(key.decode("latin-1"), (len(key), tuple(found)))
        if labels:
            self._auto.make_automaton()

    @property
    def longest(self) -> int:
        """Length of the longest pattern (stream scrubbers keep this much tail)."""
        return self._longest

    def __len__(self) -> int:
        return self._size

    def search(self, haystack: bytes) -> Iterator[tuple[int, int, tuple[T, ...]]]:
        """Yield (start, end, labels) for every occurrence, overlapping ones included."""
        if not self._size or len(haystack) == 0:
            return
        for end, (length, found) in self._auto.iter(haystack.decode("latin-1")):
            yield end + 1 - length, end + 1, found

    def search_longest(self, haystack: bytes) -> Iterator[tuple[int, int, tuple[T, ...]]]:
        """Yield non-overlapping occurrences, leftmost-longest first (for replacing)."""
        if not self._size or len(haystack) == 0:
            return
        for end, (length, found) in self._auto.iter_long(haystack.decode("latin-1")):
            yield end + 1 - length, end + 1, found

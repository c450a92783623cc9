"""Where a long spelling can start: a 4-gram filter ahead of the matcher's automaton.

With the recoded spellings (`recodings.py`: ciphers, character codes) the automaton
holds over a hundred patterns whose first bytes are most letters and digits, so its
own prefilter gives up and its DFA walks every byte of a body: 1.3 ms a MiB of
prose, most of the engine's time on a 1 MiB request. Every pattern is at least 8
bytes long, so an occurrence starting at s covers the one offset i in s..s+3 that
is a multiple of 4, and the 4 bytes at i are the pattern's 4-gram at offset i - s.
`_native.grams` hashes the 4 bytes at each such i into a bit table of the patterns'
grams at offsets 0-3 (0.3 ms a MiB); the automaton then searches only near the hits.
A pattern of 11 bytes or more also covers the next 4 bytes at i + 4, as its gram 4
bytes further on: a hit needs those in a second table too. Prose is full of some
grams of a value's spellings (`thef`): one table alone made 264 hits a MiB of the
bench's JSON prose, each a window searched from Python (0.6 ms); the pair makes few.
"""

from __future__ import annotations

from collections.abc import Iterable

from agentcage.policy.accelerator import native

GRAM = 4
SHORTEST = 2 * GRAM  # each occurrence of a shorter pattern may cover no whole gram at i
_SHIFT = 13  # a 2**19-bit table (64 KiB): ~600 set bits make 0.1% of other grams hit
_MULTIPLIER = 2654435761  # Knuth's multiplicative hash


class GramFilter:
    """The stretches of a haystack that can hold any of `keys` (each >= 8 bytes)."""

    def __init__(self, keys: Iterable[bytes]) -> None:
        size = (1 << (32 - _SHIFT)) // 8
        first, second, solo = bytearray(size), bytearray(size), bytearray(size)
        self._longest = 0
        for key in keys:
            if len(key) < SHORTEST:
                raise ValueError(f"a gram filter needs keys of {SHORTEST} bytes or more")
            self._longest = max(self._longest, len(key))
            for offset in range(GRAM):
                _mark(first, key[offset : offset + GRAM])
                if offset + 2 * GRAM <= len(key):
                    _mark(second, key[offset + GRAM : offset + 2 * GRAM])
                else:
                    # No whole gram 4 bytes on: this one alone must make a hit.
                    _mark(solo, key[offset : offset + GRAM])
        self.tables = (bytes(first), bytes(second), bytes(solo))

    def windows(self, data: bytes) -> list[tuple[int, int]]:
        """Disjoint (start, end) stretches in order, each occurrence of a key wholly
        inside one: the occurrence behind a hit at i starts at i - 3 at the earliest."""
        if native is not None:
            hits = native.grams(data, *self.tables, _SHIFT)
        else:
            hits = python_grams(data, *self.tables, _SHIFT)
        merged: list[tuple[int, int]] = []
        for at in hits:
            lo, hi = max(0, at - GRAM + 1), min(len(data), at + self._longest)
            if merged and lo <= merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        return merged


def _mark(table: bytearray, gram: bytes) -> None:
    bit = _hash(gram, _SHIFT)
    table[bit >> 3] |= 1 << (bit & 7)


def _hash(gram: bytes, shift: int) -> int:
    return ((int.from_bytes(gram, "little") * _MULTIPLIER) & 0xFFFFFFFF) >> shift


def _set(table: bytes, bit: int) -> bool:
    return bool(table[bit >> 3] >> (bit & 7) & 1)


def python_grams(data: bytes, first: bytes, second: bytes, solo: bytes, shift: int) -> list[int]:
    """`native.grams` without the accelerator (and the definition it is tested against)."""
    found: list[int] = []
    for at in range(0, len(data) - GRAM + 1, GRAM):
        bit = _hash(data[at : at + GRAM], shift)
        if not _set(first, bit):
            continue
        after = data[at + GRAM : at + 2 * GRAM]
        if len(after) == GRAM and not _set(second, _hash(after, shift)) and not _set(solo, bit):
            continue
        found.append(at)
    return found

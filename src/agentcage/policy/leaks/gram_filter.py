"""Where a long spelling can start: a 4-gram filter ahead of the matcher's automaton.

With the recoded spellings (`recodings.py`: ciphers, character codes) the automaton
holds over a hundred patterns whose first bytes are most letters and digits, so its
own prefilter gives up and its DFA walks every byte of a body: 1.3 ms a MiB of
prose, most of the engine's time on a 1 MiB request. Every pattern is at least 8
bytes long, so an occurrence starting at s covers the one offset i in s..s+3 that
is a multiple of 4, and the 4 bytes at i are the pattern's 4-gram at offset i - s.
`_native.grams` hashes the 4 bytes at each such i into a bit table of the patterns'
grams at offsets 0-3 (0.3 ms a MiB); the automaton then searches only near the hits.
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
        table = bytearray((1 << (32 - _SHIFT)) // 8)
        self._longest = 0
        for key in keys:
            if len(key) < SHORTEST:
                raise ValueError(f"a gram filter needs keys of {SHORTEST} bytes or more")
            self._longest = max(self._longest, len(key))
            for offset in range(GRAM):
                bit = _hash(key[offset : offset + GRAM])
                table[bit >> 3] |= 1 << (bit & 7)
        self.table = bytes(table)

    def windows(self, data: bytes) -> list[tuple[int, int]]:
        """Disjoint (start, end) stretches in order, each occurrence of a key wholly
        inside one: the occurrence behind a hit at i starts at i - 3 at the earliest."""
        if native is not None:
            hits = native.grams(data, self.table, _SHIFT)
        else:
            hits = python_grams(data, self.table, _SHIFT)
        merged: list[tuple[int, int]] = []
        for at in hits:
            lo, hi = max(0, at - GRAM + 1), min(len(data), at + self._longest)
            if merged and lo <= merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        return merged


def _hash(gram: bytes) -> int:
    return ((int.from_bytes(gram, "little") * _MULTIPLIER) & 0xFFFFFFFF) >> _SHIFT


def python_grams(data: bytes, table: bytes, shift: int) -> list[int]:
    """`native.grams` without the accelerator (and the definition it is tested against)."""
    found: list[int] = []
    for at in range(0, len(data) - GRAM + 1, GRAM):
        x = int.from_bytes(data[at : at + GRAM], "little")
        bit = ((x * _MULTIPLIER) & 0xFFFFFFFF) >> shift
        if table[bit >> 3] >> (bit & 7) & 1:
            found.append(at)
    return found

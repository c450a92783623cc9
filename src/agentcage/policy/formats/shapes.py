"""Where formats without a prefix can be: the stretches one fast pass finds.

Card numbers, IBANs and seed phrases have no fixed anchor and no long token run,
so searching a megabyte of prose for them with a regex would cost 15-50 ms. Each
shape here finds the few stretches they could be in with one C pass (tenths of
a millisecond; `policy/_native.c`), and the regexes run there only.
"""

from __future__ import annotations

import functools
import re

from agentcage.policy.accelerator import native
from agentcage.policy.formats.pattern import Shape
from agentcage.policy.formats.wordlist import bip39_words
from agentcage.policy.runs import byte_table, long_runs

# Capitals, digits, spaces and dashes: card numbers (14-19 digits, grouped or not)
# and IBANs (15-34 characters) are runs of these; the shortest a card can be
# written with room for its issuer prefix is 14.
_GROUPS = byte_table(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -")
_SHORTEST_GROUP = 14
_SHORTEST_WORD, _LONGEST_WORD, _MAX_GAP, _MIN_WORDS = 3, 8, 4, 12
_MARGIN = 2  # bytes after a stretch, so a lookahead at its end sees the real next byte
WORD_GAPS = frozenset(b" \t\r\n,\"'")


def _widened(spans: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    return [(start, min(size, end + _MARGIN)) for start, end in spans]


def number_groups(data: bytes) -> list[tuple[int, int]]:
    """Runs of capitals, digits, spaces and dashes long enough for a card or an IBAN."""
    return _widened(list(long_runs(data, _GROUPS, _SHORTEST_GROUP)), len(data))


@functools.cache
def prefix_table() -> bytes:
    """27**4 bytes marking the first four letters of each BIP-39 word (unique in the
    list), indexed as `_native.words` does."""
    table = bytearray(27**4)
    for word in bip39_words():
        table[_prefix_index(word)] = 1
    return bytes(table)


def _prefix_index(word: bytes) -> int:
    index = 0
    for j in range(4):
        index = index * 27 + (word[j] - 0x60 if j < len(word) else 0)
    return index


def word_runs(data: bytes) -> list[tuple[int, int]]:
    """Stretches of twelve or more BIP-39-like words (see `_native.words`)."""
    if len(data) < _MIN_WORDS * (_SHORTEST_WORD + 1) - 1:
        return []
    args = (prefix_table(), _SHORTEST_WORD, _LONGEST_WORD, _MAX_GAP, _MIN_WORDS)
    found = native.words(data, *args) if native is not None else python_words(data, *args)
    return _widened(found, len(data))


_LOWER = re.compile(rb"[a-z]+")
_ESCAPE = re.compile(rb"\\[nrt]")


def python_words(
    data: bytes, prefixes: bytes, shortest: int, longest: int, max_gap: int, min_words: int
) -> list[tuple[int, int]]:
    """`native.words` without the accelerator (and the definition it is tested against)."""
    data = _ESCAPE.sub(b"  ", data)  # a JSON escape of a line break is two gap bytes
    found: list[tuple[int, int]] = []
    first = last = count = 0
    for match in _LOWER.finditer(data):
        start, end = match.span()
        word = (
            shortest <= end - start <= longest
            and not (start > 0 and _glue(data[start - 1]))
            and not (end < len(data) and _glue(data[end]))
            and (not prefixes or prefixes[_prefix_index(match.group())] != 0)
        )
        follows = (
            word
            and count > 0
            and start - last <= max_gap
            and all(b in WORD_GAPS for b in data[last:start])
        )
        if not follows:
            if count >= min_words:
                found.append((first, last))
            count = 0
        if word:
            if count == 0:
                first = start
            count += 1
            last = end
    if count >= min_words:
        found.append((first, last))
    return found


def _glue(byte: int) -> bool:
    return 0x41 <= byte <= 0x5A or 0x30 <= byte <= 0x39 or byte == 0x5F


NUMBER_GROUPS = Shape("number groups", number_groups)
WORD_RUNS = Shape("word runs", word_runs)

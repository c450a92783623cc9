"""Where formats without a prefix can be: the stretches one fast pass finds.

Card numbers, IBANs and seed phrases have no fixed anchor and no long token run,
so searching a megabyte of prose for them with a regex would cost 15-50 ms. Each
shape here finds the few stretches they could be in with one C pass (tenths of
a millisecond; `policy/_native.c`), and the regexes run there only.
"""

from __future__ import annotations

import re

from agentcage.policy.accelerator import native
from agentcage.policy.formats.pattern import Shape
from agentcage.policy.runs import byte_table, long_runs

_DIGIT_GROUPS = byte_table(b"0123456789 -")
_UPPER_GROUPS = byte_table(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ")
WORD_GAPS = bytes(1 if chr(b) in " \t\r\n,\"'" else 0 for b in range(256))
_SHORTEST_WORD, _LONGEST_WORD, _MAX_GAP, _MIN_WORDS = 3, 8, 4, 12
_MARGIN = 2  # bytes after a stretch, so a lookahead at its end sees the real next byte


def _widened(spans: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    return [(start, min(size, end + _MARGIN)) for start, end in spans]


def digit_groups(data: bytes) -> list[tuple[int, int]]:
    """Runs of digits, spaces and dashes long enough to hold a card number."""
    return _widened(list(long_runs(data, _DIGIT_GROUPS, 14)), len(data))


def upper_groups(data: bytes) -> list[tuple[int, int]]:
    """Runs of capitals, digits and spaces long enough to hold an IBAN."""
    return _widened(list(long_runs(data, _UPPER_GROUPS, 15)), len(data))


def word_runs(data: bytes) -> list[tuple[int, int]]:
    """Stretches of at least twelve 3-8 letter lowercase words (see `_native.words`)."""
    if len(data) < _MIN_WORDS * (_SHORTEST_WORD + 1) - 1:
        return []
    args = (WORD_GAPS, _SHORTEST_WORD, _LONGEST_WORD, _MAX_GAP, _MIN_WORDS)
    found = native.words(data, *args) if native is not None else python_words(data, *args)
    return _widened(found, len(data))


_LOWER = re.compile(rb"[a-z]+")
_ESCAPE = re.compile(rb"\\[nrt]")


def python_words(
    data: bytes, gaps: bytes, shortest: int, longest: int, max_gap: int, min_words: int
) -> list[tuple[int, int]]:
    """`native.words` without the accelerator (and the definition it is tested against)."""
    found: list[tuple[int, int]] = []
    first = last = count = 0
    for match in _LOWER.finditer(data):
        start, end = match.span()
        word = (
            shortest <= end - start <= longest
            and not (start > 0 and _glue(data[start - 1]))
            and not (end < len(data) and _glue(data[end]))
        )
        gap = _ESCAPE.sub(b"", data[last:start]) if count else b""
        follows = word and count > 0 and start - last <= max_gap and all(gaps[b] for b in gap)
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


DIGIT_GROUPS = Shape("digit groups", digit_groups)
UPPER_GROUPS = Shape("upper-case groups", upper_groups)
WORD_RUNS = Shape("word runs", word_runs)

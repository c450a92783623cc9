"""Find long runs of token characters fast, to narrow where regexes need to look.

Nearly every credential format and every base64 blob is a long run of characters
from a small alphabet. Mapping the payload through a 256-byte table (one C pass)
and searching the result for N consecutive marks (a substring search) finds those
runs without a Python step per byte, so the regexes and decoders run only on small
windows around them instead of on every byte of a megabyte body.

That search stumbles over every word of prose (about 1.2 ms/MiB), so the C
accelerator, when built, finds the runs in one branch-free pass instead (0.1-0.5 ms);
the Python version below defines what it must return. Either way the runs of the
base64 alphabet, wanted by both the secret scanner and the leak decoder, are found
once per body by `token_runs` and shared.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

import ahocorasick_rs

from agentcage.policy.accelerator import native

BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-"
# The shortest run any caller of `token_runs` wants (the leak decoder's base64).
TOKEN_RUN_FLOOR = 16
_SHARED_FROM = 4096  # smaller data is cheaper to redo than to keep
_FIND_FROM = 64  # from this run length on, `bytes.find` beats the automaton


MARK = 0x41  # b"A"


def byte_table(alphabet: bytes) -> bytes:
    """A `bytes.translate` table mapping `alphabet` to b"A" and everything else to b" "."""
    return bytes(MARK if i in alphabet else 0x20 for i in range(256))


BASE64_TABLE = byte_table(BASE64_ALPHABET)


def long_runs(data: bytes, table: bytes, min_len: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each maximal run of `table`-marked bytes at least `min_len` long."""
    if len(data) < min_len or min_len < 1:
        return iter(())
    if native is not None:
        return iter(native.runs(data, _members(table), min_len))
    return python_long_runs(data, table, min_len)


def followed(data: bytes, lead: bytes, marks: bytes) -> bool:
    """Whether `lead` is followed somewhere in `data` by a byte `marks` has set (a 256-byte
    table of 0 and 1): what a regex for an escape needs before it can match. Without the
    accelerator, True: the regex then decides alone."""
    return native is None or native.followed(data, lead[0], marks)


@functools.lru_cache(maxsize=16)
def _members(table: bytes) -> bytes:
    return bytes(byte == MARK for byte in table)


def python_long_runs(data: bytes, table: bytes, min_len: int) -> Iterator[tuple[int, int]]:
    """`long_runs` without the accelerator (and the definition it is tested against)."""
    if len(data) < min_len or min_len < 1:
        return
    marked = data.translate(table)
    if min_len >= _FIND_FROM:
        yield from _found_runs(marked, min_len)
        return
    if marked.startswith(b"A" * min_len):
        yield 0, _run_end(marked, min_len)
    # Every other run starts right after a gap. On text, a search for the run alone
    # trips over each word; the Rust automaton skips through gap-then-run 1.7x faster.
    for _index, gap, _end in _gap_then_run(min_len).find_matches_as_indexes(marked):
        yield gap + 1, _run_end(marked, gap + 1 + min_len)


def _found_runs(marked: bytes, min_len: int) -> Iterator[tuple[int, int]]:
    # A long needle lets the substring search skip ahead by its length at each gap.
    needle = b"A" * min_len
    pos = marked.find(needle)
    while pos >= 0:
        # The search resumes after each run, so the first hit is where a run starts.
        end = _run_end(marked, pos + min_len)
        yield pos, end
        pos = marked.find(needle, end)


def _run_end(marked: bytes, after: int) -> int:
    end = marked.find(b" ", after)
    return len(marked) if end < 0 else end


@functools.lru_cache(maxsize=8)
def _gap_then_run(min_len: int) -> ahocorasick_rs.BytesAhoCorasick:
    return ahocorasick_rs.BytesAhoCorasick([b" " + b"A" * min_len])


class _TokenRuns:
    """The base64-alphabet runs of the last large payload asked about."""

    def __init__(self) -> None:
        self._data: bytes | None = None
        self._runs: list[tuple[int, int]] = []

    def __call__(self, data: bytes, min_len: int) -> list[tuple[int, int]]:
        if min_len < TOKEN_RUN_FLOOR:
            return list(long_runs(data, BASE64_TABLE, min_len))
        if data is not self._data:
            found = list(long_runs(data, BASE64_TABLE, TOKEN_RUN_FLOOR))
            if len(data) < _SHARED_FROM:
                return [run for run in found if run[1] - run[0] >= min_len]
            self._data, self._runs = data, found
        return [run for run in self._runs if run[1] - run[0] >= min_len]


# The chain inspects one payload at a time, so one slot is enough; holding the
# reference keeps the identity check sound (the object cannot be freed and reused).
token_runs = _TokenRuns()


def windows(
    data: bytes, min_len: int, before: int, after: int, max_run: int | None = None
) -> list[tuple[int, int]]:
    """Merged windows around each long token run, widened by `before`/`after` bytes.

    A run longer than `max_run` contributes only its head and tail: the middle of a
    megabyte base64 image holds no token with a boundary on both sides, and
    searching it would cost more than the rest of the body together.
    """
    spans: list[tuple[int, int]] = []
    for start, end in token_runs(data, min_len):
        if max_run is not None and end - start > 2 * max_run:
            spans += [(start, start + max_run), (end - max_run, end)]
        else:
            spans.append((start, end))
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        lo, hi = max(0, start - before), min(len(data), end + after)
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def around(pattern: re.Pattern[bytes], data: bytes, width: int) -> list[tuple[int, int]] | None:
    """Merged windows `width` bytes either side of each match of `pattern`, or None
    when they would cover more than half of `data` (cheaper to take it whole)."""
    spans: list[tuple[int, int]] = []
    for match in pattern.finditer(data):
        start, end = max(match.start() - width, 0), match.end() + width
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return None if sum(b - a for a, b in spans) > len(data) // 2 else spans

"""Find long runs of token characters fast, to narrow where regexes need to look.

Nearly every credential format and every base64 blob is a long run of characters
from a small alphabet. Mapping the payload through a 256-byte table (one C pass)
and searching the result for N consecutive marks (a fast substring search) finds
those runs at hundreds of MB/s, so the regexes run only on small windows around
them instead of on every byte of a megabyte body.
"""

from __future__ import annotations

from collections.abc import Iterator


def byte_table(alphabet: bytes) -> bytes:
    """A `bytes.translate` table mapping `alphabet` to b"A" and everything else to b" "."""
    return bytes(0x41 if i in alphabet else 0x20 for i in range(256))


def long_runs(data: bytes, table: bytes, min_len: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each maximal run of `table`-marked bytes at least `min_len` long."""
    if len(data) < min_len:
        return
    marked = data.translate(table)
    needle = b"A" * min_len
    pos = marked.find(needle)
    while pos >= 0:
        start = marked.rfind(b" ", 0, pos) + 1
        end = marked.find(b" ", pos + min_len)
        if end < 0:
            end = len(data)
        yield start, end
        pos = marked.find(needle, end)


def windows(
    data: bytes, table: bytes, min_len: int, before: int, after: int, max_run: int | None = None
) -> list[tuple[int, int]]:
    """Merged windows around each long run, widened by `before`/`after` bytes of context.

    A run longer than `max_run` contributes only its head and tail: the middle of a
    megabyte base64 image holds no token with a boundary on both sides, and
    searching it would cost more than the rest of the body together.
    """
    spans: list[tuple[int, int]] = []
    for start, end in long_runs(data, table, min_len):
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

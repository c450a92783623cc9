"""Response scrubbing: a real value echoed back reaches the agent as its placeholder.

The value is replaced in each encoding it may come back in (raw, reversed, hex,
percent, JSON and unicode escapes, base64 at any alignment) by the placeholder in
the same encoding, so JSON stays JSON and URLs stay URLs. In a whole body a
base64 run holding the value is decoded, fixed and re-encoded, so it still
decodes cleanly; in a stream (SSE), where a run may be cut by a chunk boundary,
the base64 characters of the value are swapped for those of the placeholder.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

from agentcage.policy.leaks.automaton import Automaton
from agentcage.policy.leaks.encodings import variants

_B64_CHARS = re.compile(rb"[A-Za-z0-9+/=_-]")
_TO_STD = bytes.maketrans(b"-_", b"+/")
_TO_URL = bytes.maketrans(b"+/", b"-_")


class Scrubber:
    """Replace real values (keys of `replacements`) by their placeholders."""

    def __init__(self, replacements: Mapping[bytes, bytes], min_length: int = 8) -> None:
        self._pairs = [(r, f) for r, f in replacements.items() if len(r) >= min_length]
        patterns: list[tuple[bytes, tuple[bytes, bool]]] = []
        for real, fake in self._pairs:
            for spelled, spelled_fake in zip(variants(real), variants(fake), strict=True):
                is_b64 = spelled.technique.startswith("base64")
                patterns.append((spelled.text, (spelled_fake.text, is_b64)))
        self._automaton = Automaton(patterns)

    @property
    def keep(self) -> int:
        """Bytes a stream must hold back so no spelling is cut in two."""
        return max(self._automaton.longest - 1, 0)

    def __bool__(self) -> bool:
        return bool(self._pairs)

    def spellings(self) -> list[bytes]:
        """Every spelling of every value that `scrub` replaces."""
        return self._automaton.keys()

    def occurs_in(self, data: bytes) -> bool:
        """Whether `data` holds any spelling (one fast pass)."""
        return data in self._automaton

    def safe_cut(self, buffer: bytes, cut: int) -> int:
        """`cut`, moved back to the start of any occurrence it would split."""
        for start, end, _labels in self._automaton.search_longest(buffer):
            if start < cut < end:
                return start
            if start >= cut:
                break
        return cut

    def scrub(self, data: bytes) -> bytes:
        """A whole body: base64 runs are re-encoded so they still decode."""
        return self._replace(data, whole=True)

    def scrub_part(self, data: bytes) -> bytes:
        return self._replace(data, whole=False)

    def _replace(self, data: bytes, whole: bool) -> bytes:
        if not self._pairs:
            return data
        out: list[bytes] = []
        last = 0
        for start, end, labels in self._automaton.search_longest(data):
            if start < last:
                continue  # inside a base64 run already rewritten
            fake, is_b64 = labels[0]
            if is_b64 and whole:
                span = self._rewrite_run(data, start, end)
                if span is not None:
                    run_start, run_end, text = span
                    if run_start >= last:
                        out += (data[last:run_start], text)
                        last = run_end
                        continue
            out += (data[last:start], fake)
            last = end
        out.append(data[last:])
        return b"".join(out)

    def _rewrite_run(self, data: bytes, start: int, end: int) -> tuple[int, int, bytes] | None:
        run_start, run_end = start, end
        while run_start > 0 and _B64_CHARS.fullmatch(data[run_start - 1 : run_start]):
            run_start -= 1
        while run_end < len(data) and _B64_CHARS.fullmatch(data[run_end : run_end + 1]):
            run_end += 1
        run = data[run_start:run_end]
        urlsafe = b"-" in run or b"_" in run
        body = run.rstrip(b"=").translate(_TO_STD)
        try:
            decoded = base64.b64decode(body + b"=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            return None
        fixed = decoded
        for real, fake in self._pairs:
            fixed = fixed.replace(real, fake)
        if fixed == decoded:
            return None  # the run is not aligned as we read it; swap characters instead
        text = base64.b64encode(fixed)
        if urlsafe:
            text = text.translate(_TO_URL)
        if len(run) % 4:  # the run was unpadded; keep it so
            text = text.rstrip(b"=")
        return run_start, run_end, text


class StreamScrubber:
    """Scrub a body that arrives in chunks (SSE, chunked transfer).

    Holds back the last `keep` bytes of each chunk: a spelling that straddles a
    boundary is complete in the next call. `flush()` returns what is held back.
    """

    def __init__(self, scrubber: Scrubber) -> None:
        self._scrubber = scrubber
        self._tail = b""

    def feed(self, chunk: bytes) -> bytes:
        if not self._scrubber:
            return chunk
        buffer = self._tail + chunk
        cut = max(len(buffer) - self._scrubber.keep, 0)
        cut = self._scrubber.safe_cut(buffer, cut)
        self._tail = buffer[cut:]
        return self._scrubber.scrub_part(buffer[:cut])

    def flush(self) -> bytes:
        rest, self._tail = self._tail, b""
        return self._scrubber.scrub_part(rest)

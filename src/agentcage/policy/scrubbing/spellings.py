"""Replace every spelling the leak matcher knows of a real value by its placeholder.

The value is replaced in each encoding it may come back in (raw, reversed, hex,
percent, JSON and unicode escapes, base64 at any alignment) by the placeholder in
the same encoding, so JSON stays JSON and URLs stay URLs. A base64 run holding the
value is decoded, fixed and re-encoded, so it still decodes cleanly; where the run
cannot be decoded that way (it is not aligned as read), the base64 characters of
the value are swapped for those of the placeholder.
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


class SpellingScrubber:
    """Replace real values (keys of `replacements`, at least `min_length` long) by placeholders."""

    def __init__(self, replacements: Mapping[bytes, bytes], min_length: int = 8) -> None:
        self._pairs = [(r, f) for r, f in replacements.items() if len(r) >= min_length]
        patterns: list[tuple[bytes, tuple[bytes, bool]]] = []
        for real, fake in self._pairs:
            for spelled, spelled_fake in zip(variants(real), variants(fake), strict=True):
                is_b64 = spelled.technique.startswith("base64")
                patterns.append((spelled.text, (spelled_fake.text, is_b64)))
        self._automaton = Automaton(patterns)

    def __bool__(self) -> bool:
        return bool(self._pairs)

    def spellings(self) -> list[bytes]:
        """Every spelling of every value that `scrub` replaces."""
        return self._automaton.keys()

    def occurs_in(self, data: bytes) -> bool:
        """Whether `data` holds any spelling (one fast pass)."""
        return data in self._automaton

    def scrub(self, data: bytes) -> bytes:
        """Base64 runs are re-encoded so they still decode."""
        if not self._pairs:
            return data
        out: list[bytes] = []
        last = 0
        for start, end, labels in self._automaton.search_longest(data):
            if start < last:
                continue  # inside a base64 run already rewritten
            fake, is_b64 = labels[0]
            if is_b64:
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

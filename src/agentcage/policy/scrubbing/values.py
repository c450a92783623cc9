"""The policy's response scrubber, extended to every encoding the leak matcher knows.

The base scrubber replaces whole values (raw, URL-encoded, base64 from a group
boundary, JSON-escaped); this one then also replaces hex, `\\uXXXX`, double
percent-encoding, reversed values and base64 at any alignment.
"""

from __future__ import annotations

from collections.abc import Iterable

from agentcage.policy.scrubbing.forms import Scrubber
from agentcage.policy.scrubbing.spellings import Scrubber as EncodedScrubber


class ResponseScrubber(Scrubber):
    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        pairs = list(pairs)
        super().__init__(pairs)
        self._encoded = EncodedScrubber({v.encode(): p.encode() for v, p in pairs if v})
        # A base form holding one of the encoded scrubber's spellings is present only
        # where that spelling is: its fast automaton answers for both. The rest (short
        # values, `+` for spaces, lower-case escapes) are searched for one by one.
        spellings = self._encoded.spellings()
        self._uncovered = [f for f in self._bytes if not any(s in f for s in spellings)]

    def scrub(self, data: bytes) -> bytes:
        # Nearly every body holds no value: one SIMD pass says so, instead of a
        # substring search per form (~0.1 ms/MiB each).
        if not self._encoded.occurs_in(data) and not any(f in data for f in self._uncovered):
            return data
        return self._encoded.scrub(super().scrub(data))

    def scrub_text(self, text: str) -> str:
        clean = super().scrub_text(text)
        if not self._encoded:
            return clean
        raw = clean.encode("utf-8", "surrogateescape")
        return self._encoded.scrub(raw).decode("utf-8", "surrogateescape")

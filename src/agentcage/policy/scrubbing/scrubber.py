"""The policy's value scrubber: whole values in their common forms, then every spelling.

`FormScrubber` replaces whole values of any length raw, URL-encoded, base64 from a
group boundary and JSON-escaped; `SpellingScrubber` then also replaces hex,
`\\uXXXX`, double percent-encoding, reversed values and base64 at any alignment.
"""

from __future__ import annotations

from collections.abc import Iterable

from agentcage.policy.scrubbing.forms import FormScrubber
from agentcage.policy.scrubbing.spellings import SpellingScrubber


class ValueScrubber:
    """What `Policy.scrub` runs: every real value in any form becomes its placeholder."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        pairs = list(pairs)
        self._forms = FormScrubber(pairs)
        self._spellings = SpellingScrubber({v.encode(): p.encode() for v, p in pairs if v})
        # A form holding one of the spelling scrubber's spellings is present only where
        # that spelling is: its fast automaton answers for both. The rest (short values,
        # `+` for spaces, lower-case escapes) are searched for one by one.
        spellings = self._spellings.spellings()
        self._uncovered = [f for f in self._forms.forms() if not any(s in f for s in spellings)]

    def scrub(self, data: bytes) -> bytes:
        # Nearly every body holds no value: one SIMD pass says so, instead of a
        # substring search per form (~0.1 ms/MiB each).
        if not self._spellings.occurs_in(data) and not any(f in data for f in self._uncovered):
            return data
        return self._spellings.scrub(self._forms.scrub(data))

    def scrub_text(self, text: str) -> str:
        clean = self._forms.scrub_text(text)
        if not self._spellings:
            return clean
        raw = clean.encode("utf-8", "surrogateescape")
        return self._spellings.scrub(raw).decode("utf-8", "surrogateescape")

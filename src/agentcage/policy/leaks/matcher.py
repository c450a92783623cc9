"""Find any protected value, in any of its spellings, in one pass over a haystack."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from agentcage.policy.accelerator import native
from agentcage.policy.leaks.automaton import Automaton
from agentcage.policy.leaks.encodings import canonical
from agentcage.policy.leaks.gram_filter import SHORTEST, GramFilter
from agentcage.policy.leaks.protected import Protected, long_enough
from agentcage.policy.leaks.recodings import recoded

_DFA_PATTERNS = 2048  # about 25 values with every spelling
# From this size on, the automaton searches only where the gram filter says a
# spelling can be (`gram_filter.py`); below, a search costs less than the filter.
_FILTERED_FROM = 16 * 1024


@dataclass(frozen=True, slots=True)
class Match:
    secret: Protected
    technique: str  # which spelling matched, e.g. "base64url@2"


class SecretMatcher:
    """All canonical variants of all protected values in one automaton.

    Values whose canonical form is shorter than `min_length` are left out (and
    listed in `skipped`) because they would match ordinary text.
    """

    def __init__(self, secrets: Sequence[Protected], min_length: int = 8) -> None:
        self.secrets = tuple(s for s in secrets if long_enough(s.value, min_length))
        self.skipped = tuple(s.name for s in secrets if not long_enough(s.value, min_length))
        patterns: list[tuple[bytes, tuple[int, str]]] = []
        for index, secret in enumerate(self.secrets):
            for variant in [*secret.variants(), *recoded(secret.value)]:
                key = canonical(variant.text)
                if len(key) >= min_length:
                    patterns.append((key, (index, variant.technique)))
        # Every haystack is searched, so the leftmost search is a DFA while the
        # spellings are few: 3x faster on prose and binary, at about 1 MiB of memory
        # a value (an NFA's prefilter weakens as patterns are added).
        self._automaton = Automaton(patterns, dfa=len(patterns) <= _DFA_PATTERNS)
        keys = self._automaton.keys()
        # In pure Python the filter's loop would cost more than the search it saves.
        usable = native is not None and keys and min(map(len, keys)) >= SHORTEST
        self._grams = GramFilter(keys) if usable else None

    def __len__(self) -> int:
        return len(self._automaton)

    def scan(self, data: bytes) -> list[Match]:
        """Each protected value found in `data`, once, with the first spelling seen."""
        return self.scan_canonical(canonical(data))

    def scan_canonical(self, canon: bytes) -> list[Match]:
        # One match per value and no cap below the number of values: a cap could be
        # filled with values allowed to this host (placeholders sent home in many
        # spellings) to hide one that is not.
        found: dict[int, Match] = {}
        for labels in self._occurrences(canon):
            for index, technique in labels:
                if index not in found:
                    found[index] = Match(self.secrets[index], technique)
            if len(found) == len(self.secrets):
                break
        return list(found.values())

    def _occurrences(self, canon: bytes) -> Iterator[tuple[tuple[int, str], ...]]:
        """The labels of every occurrence in `canon`, leftmost first."""
        if self._grams is None or len(canon) < _FILTERED_FROM:
            windows = [(0, len(canon))]
        else:
            windows = self._grams.windows(canon)
        for lo, hi in windows:
            window = canon if (lo, hi) == (0, len(canon)) else canon[lo:hi]
            for _start, _end, labels in self._automaton.search(window):
                yield labels

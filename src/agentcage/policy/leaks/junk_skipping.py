"""A known value with junk characters put in after every few of its own.

The `dejunked` views (`interleave.py`) take out one character in every three, four
or five, at each phase: a copy of the data per guess, so a period past five would
cost ever more copies, and a stretch that changes length (five real characters, then
seven, then six) fits no period at all. Here the value itself is followed instead:
from each place where its first `_ANCHOR` canonical characters occur, the rest of
it is read in order, one or two data characters skipped where they break it, each
skip after at least `_LEAST_STRETCH` real characters. Only the value's own raw
spelling is followed, lower-cased, in the data lower-cased (junk after every few
characters as sent) and canonical (as sent, less separators: `sk-an` and a junk
letter are four canonical characters before it), only in the request's own regions
(not beneath a decoding),
and only values of `_SHORTEST` canonical characters or more, where such a reading
cannot happen by chance: after the anchor each character has at most three places
to be, so ordinary data follows seven more characters one time in 10**7.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentcage.policy.leaks.automaton import Automaton
from agentcage.policy.leaks.encodings import canonical
from agentcage.policy.leaks.matcher import Match
from agentcage.policy.leaks.protected import Protected

TECHNIQUE = "junk-skipped"
_ANCHOR = 5  # the value's leading characters that must arrive together
_SHORTEST = 12  # canonical characters: shorter values are not followed
_MAX_SKIP = 2  # junk characters in one place
_LEAST_STRETCH = 3  # real characters between two skips (shorter: the dejunked views)


class JunkSkippingSearch:
    """Known values read through junk characters, from their leading characters."""

    def __init__(self, secrets: Sequence[Protected]) -> None:
        self._secrets: list[Protected] = []
        canonical_anchors: list[tuple[bytes, tuple[int, bytes]]] = []
        lower_anchors: list[tuple[bytes, tuple[int, bytes]]] = []
        for secret in secrets:
            key = canonical(secret.value)
            if len(key) < _SHORTEST:
                continue
            index = len(self._secrets)
            self._secrets.append(secret)
            canonical_anchors.append((key[:_ANCHOR], (index, key)))
            lower = secret.value.lower()
            if lower != key:
                lower_anchors.append((lower[:_ANCHOR], (index, lower)))
        self._canonical = Automaton(canonical_anchors)
        self._lower = Automaton(lower_anchors)

    def scan(self, regions: Sequence[bytes]) -> list[Match]:
        """Each value found in `regions` with junk skipped, once."""
        found: dict[int, Match] = {}
        for automaton, fold in ((self._canonical, canonical), (self._lower, bytes.lower)):
            if len(automaton) == 0:
                continue
            data = b"\0".join(fold(region) for region in regions)
            for start, end, labels in automaton.search(data):
                for index, key in labels:
                    if index not in found and _follows(key, data, start, end):
                        found[index] = Match(self._secrets[index], TECHNIQUE)
        return list(found.values())


def _follows(key: bytes, data: bytes, start: int, end: int) -> bool:
    """Whether `key`, whose first `end - start` characters are at `data[start:end]`,
    goes on from there with skips of at most `_MAX_SKIP` characters, each after at
    least `_LEAST_STRETCH` real ones.

    The places it may have reached are followed together (a junk character that
    happens to equal the value's next one must not end the reading), each with the
    real characters read since its last skip; there are at most a few at a time.
    """
    size = len(data)
    places = {(end, end - start)}
    for wanted in key[end - start :]:
        after: set[tuple[int, int]] = set()
        for at, stretch in places:
            if at < size and data[at] == wanted:
                after.add((at + 1, min(stretch + 1, _LEAST_STRETCH)))
            if stretch >= _LEAST_STRETCH:
                for skip in range(1, _MAX_SKIP + 1):
                    if at + skip < size and data[at + skip] == wanted:
                        after.add((at + skip + 1, 1))
        if not after:
            return False
        places = after
    return True

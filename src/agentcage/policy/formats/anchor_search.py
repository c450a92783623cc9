"""Where the anchors of the formats searched anywhere occur in a payload.

These few anchors (`APIKEY`, `assword`, `://`, ...: 26 built in) are searched over the
whole payload, not only its token windows. With the C accelerator that is one pass
for all of them (`_native.anchors`, 16 positions at a time with SSSE3): on a 64 KiB
body of prose 58 to 17 us, where it replaced 26 passes, one SIMD substring search
per anchor. Without it (or without SSSE3, where its byte loop would be the slower),
one automaton for all of them below 16 KiB (a call costs more than its search
there), and one per anchor from there on: a single automaton for all loses its
prefilter to the lower-case anchors and is several times slower on prose.

Either way, from 16 KiB on the anchors of formats whose every match holds a
non-token byte (`has_gap`) skip the middles of long token runs (a base64
screenshot), where none of them can match: a substring search slows down 100x on
random letters.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import ahocorasick_rs

from agentcage.policy.accelerator import native
from agentcage.policy.runs import token_runs

SEARCH_EACH = 16 * 1024  # from this size on, each wide anchor gets its own automaton
_LONG_RUN = 4096  # runs whose middles the search for gapped anchors skips
# Longer than any match of a `has_gap` format: a match overlapping a run's edge
# reaches no further into the run than this.
_GAP_MARGIN = 128
_BUCKETS = 8  # what `_native.anchors` sorts its needles into


class WideAnchorSearch:
    """The anchors of the formats searched anywhere: `solid` ones over the whole
    payload, `gapped` ones outside the middles of its long token runs."""

    def __init__(self, solid: Sequence[bytes], gapped: Sequence[bytes]) -> None:
        self._solid = sorted(set(solid))
        self._gapped = sorted(set(gapped))
        self._wide = sorted({*self._solid, *self._gapped})
        self.shortest = min((len(a) for a in self._wide), default=0)
        self._solid_buckets = buckets(self._solid)
        self._gapped_buckets = buckets(self._gapped)
        self._wide_buckets = buckets(self._wide)

    # The fallback's automata, built on its first use: with the accelerator in vectors
    # they are never searched, and building them cost 0.5 ms of every policy build.
    @functools.cached_property
    def _solid_search(self) -> list[ahocorasick_rs.BytesAhoCorasick | None]:
        return [automaton([a]) for a in self._solid]

    @functools.cached_property
    def _gapped_search(self) -> list[ahocorasick_rs.BytesAhoCorasick | None]:
        return [automaton([a]) for a in self._gapped]

    @functools.cached_property
    def _wide_search(self) -> ahocorasick_rs.BytesAhoCorasick | None:
        return automaton(self._wide)

    def present(self, data: bytes) -> dict[bytes, list[int]]:
        """Each anchor found, with where it starts (overlapping occurrences too)."""
        if not self._wide or len(data) < self.shortest:
            return {}
        size = len(data)
        outside = _outside_long_runs(data) if self._gapped and size >= SEARCH_EACH else None
        if native is None or not native.ANCHORS_IN_VECTORS:
            return self._present_python(data, outside)
        if outside is None or outside == [(0, size)]:
            # No long run: the solid and gapped anchors are searched alike.
            return native.anchors(data, self._wide, self._wide_buckets, 0, size)
        found = native.anchors(data, self._solid, self._solid_buckets, 0, size)
        gapped: dict[bytes, list[int]] = {}
        for lo, hi in outside:
            hits = native.anchors(data, self._gapped, self._gapped_buckets, lo, hi)
            for anchor, spots in hits.items():
                gapped.setdefault(anchor, []).extend(spots)
        # As the automata do: an anchor both solid and gapped keeps the gapped places
        # only (no built-in anchor is both), so either path gives the same findings.
        found.update(gapped)
        return found

    def _present_python(
        self, data: bytes, outside: list[tuple[int, int]] | None
    ) -> dict[bytes, list[int]]:
        whole = [(0, len(data))]
        if len(data) < SEARCH_EACH:
            return occurrences(self._wide_search, self._wide, data, whole)
        found: dict[bytes, list[int]] = {}
        for anchor, search in zip(self._solid, self._solid_search, strict=True):
            found.update(occurrences(search, [anchor], data, whole))
        for anchor, search in zip(self._gapped, self._gapped_search, strict=True):
            found.update(occurrences(search, [anchor], data, outside or whole))
        return found


def buckets(needles: Sequence[bytes]) -> bytes:
    """The bucket of each needle for `_native.anchors`: needles whose first three bytes
    are the same but for case share one (`APIKEY` and `apikey` differ only in high
    nibbles), and these groups fill the buckets in sorted order, so that a bucket's
    needles have few distinct nibbles and prose rarely hits all three bytes."""
    keys = sorted({n[:3].lower() for n in needles})
    rank = {key: i for i, key in enumerate(keys)}
    return bytes(rank[n[:3].lower()] * _BUCKETS // len(keys) for n in needles)


def python_anchors(
    data: bytes, needles: Sequence[bytes], lo: int, hi: int
) -> dict[bytes, list[int]]:
    """`native.anchors` without the accelerator (and the definition it is tested against)."""
    if not 0 <= lo <= hi <= len(data):
        raise ValueError("need 0 <= lo <= hi <= len(data)")
    found: dict[bytes, list[int]] = {}
    for needle in needles:
        if not needle:
            raise ValueError("each needle must be non-empty bytes")
        spots = []
        at = data.find(needle, lo, hi)
        while at >= 0:
            spots.append(at)
            at = data.find(needle, at + 1, hi)
        if spots:
            found[needle] = spots
    return found


def _outside_long_runs(data: bytes) -> list[tuple[int, int]]:
    """`data` but the middles of its long token runs, `_GAP_MARGIN` bytes from each end
    kept (so a match shorter than that, overlapping a run's edge, is still whole)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    if len(data) >= _LONG_RUN:
        for start, end in token_runs(data, _LONG_RUN):
            if end - start > 2 * _GAP_MARGIN:
                spans.append((pos, start + _GAP_MARGIN))
                pos = end - _GAP_MARGIN
    spans.append((pos, len(data)))
    return spans


def automaton(anchors: list[bytes]) -> ahocorasick_rs.BytesAhoCorasick | None:
    return ahocorasick_rs.BytesAhoCorasick(anchors) if anchors else None


def occurrences(
    search: ahocorasick_rs.BytesAhoCorasick | None,
    anchors: list[bytes],
    data: bytes,
    spans: list[tuple[int, int]],
) -> dict[bytes, list[int]]:
    """Anchors occurring in the spans, with where (overlapping search: none hides another)."""
    found: dict[bytes, list[int]] = {}
    if search is None:
        return found
    view = memoryview(data)
    for lo, hi in spans:
        for index, start, _end in search.find_matches_as_indexes(view[lo:hi], overlapping=True):
            found.setdefault(anchors[index], []).append(lo + start)
    return found

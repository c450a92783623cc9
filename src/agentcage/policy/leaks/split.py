"""Split detection: a protected value sent to one destination a piece at a time.

Each request, frame or DNS name yields short *pieces* (query values, path
segments, host labels, small bodies). A piece that is a substring of the
canonical spelling of a protected value (raw, reversed, hex, base64 ...) marks
that stretch of the spelling as sent. Per destination we keep a bounded window
(piece count and age limits, and a cap on destinations tracked); once the
pieces in the window cover `coverage` of one spelling (or all of it but less than
one minimal piece), the value has left in pieces and the request completing it
is blocked.

A second window, for the whole cage, holds the pieces sent to any destination
where their value is not allowed: pieces spread over two or three registrable
domains complete there. Plain lower-case words (a path part, a label) are kept
out of it, since every site's traffic interleaves there.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agentcage.policy.leaks.encodings import canonical
from agentcage.policy.leaks.matcher import Match
from agentcage.policy.leaks.protected import Protected, long_enough

# A piece found in more places than this is too generic to say which part was sent.
_MAX_OCCURRENCES = 16


@dataclass(frozen=True, slots=True)
class WindowLimits:
    max_pieces: int = 256  # per destination
    max_age: float = 600.0  # seconds a piece stays in the window
    max_destinations: int = 1024
    min_piece: int = 4  # shorter pieces (canonical) are ignored
    coverage: float = 0.8  # fraction of a spelling that must be covered
    max_pieces_per_message: int = 64


@dataclass(frozen=True, slots=True)
class _Spelling:
    secret: Protected
    technique: str
    start: int  # offset in the joined blob
    length: int


@dataclass(slots=True)
class _SentPiece:
    """A stretch of one spelling that a piece sent to the destination covered."""

    when: float
    spelling: int
    start: int  # within the spelling
    end: int


class SplitDetector:
    """Bounded per-destination memory of which parts of which secrets were sent."""

    def __init__(self, secrets: Sequence[Protected], limits: WindowLimits | None = None) -> None:
        self.limits = limits or WindowLimits()
        spellings: list[_Spelling] = []
        chunks: list[bytes] = []
        offset = 0
        for secret in secrets:
            if not long_enough(secret.value, self.limits.min_piece * 2):
                continue
            keys: set[bytes] = set()
            for variant in secret.variants():
                key = canonical(variant.text)
                if key in keys or len(key) < self.limits.min_piece * 2:
                    continue
                keys.add(key)
                spellings.append(_Spelling(secret, variant.technique, offset, len(key)))
                chunks.append(key)
                offset += len(key) + 1
        # NUL never occurs in a canonical spelling, so no piece spans two of them.
        self._blob = b"\0".join(chunks)
        # Every `min_piece`-long substring of every spelling: most pieces (words,
        # IDs) start with none of them and are rejected without scanning the blob.
        width = self.limits.min_piece
        self._grams = {c[i : i + width] for c in chunks for i in range(len(c) - width + 1)}
        self._starts = [s.start for s in spellings]
        self._spellings = spellings
        self._windows: OrderedDict[str, deque[_SentPiece]] = OrderedDict()
        self._cage: deque[_SentPiece] = deque()

    @property
    def active(self) -> bool:
        """False when no protected value is long enough to be assembled from pieces."""
        return bool(self._spellings)

    def observe(
        self, destination: str, pieces: Iterable[bytes], now: float, host: str = ""
    ) -> list[Match]:
        """Record `pieces` sent to `destination` (the registrable domain of `host`);
        return secrets now covered, in its window or in the cage's."""
        if not self._spellings:
            return []
        hits = self._locate(pieces)
        if not hits:
            return []
        window = self._window(destination, now)
        cage = self._cage_window(now)
        touched: set[int] = set()
        for index, start, end, word in hits:
            sent = _SentPiece(now, index, start, end)
            window.append(sent)
            if not word and not self._spellings[index].secret.allowed_to(host or destination):
                cage.append(sent)
            touched.add(index)
        for held in (window, cage):
            while len(held) > self.limits.max_pieces:
                held.popleft()
        found: dict[str, Match] = {}
        for index in touched:
            spelling = self._spellings[index]
            needed = self._needed(spelling.length)
            if max(self._covered(window, index), self._covered(cage, index)) >= needed:
                found.setdefault(
                    spelling.secret.name, Match(spelling.secret, "split:" + spelling.technique)
                )
        if found:  # that request is blocked; a later burst must cover the value again
            names = {m.secret.name for m in found.values()}
            kept = [s for s in cage if self._spellings[s.spelling].secret.name not in names]
            self._cage = deque(kept)
        return list(found.values())

    def _needed(self, length: int) -> float:
        """Characters that must be covered: `coverage` of the spelling, or all but a
        tail shorter than `min_piece` (the natural last piece of a short value, which
        is too short to be recorded itself)."""
        return min(self.limits.coverage * length, length - self.limits.min_piece + 1)

    def _locate(self, pieces: Iterable[bytes]) -> list[tuple[int, int, int, bool]]:
        """(spelling, start, end, is a plain word) of each place a piece was found."""
        out: list[tuple[int, int, int, bool]] = []
        for count, piece in enumerate(pieces):
            if count >= self.limits.max_pieces_per_message:
                break
            key = canonical(piece)
            if len(key) < self.limits.min_piece or key[: self.limits.min_piece] not in self._grams:
                continue
            if b"\0" in key:  # would match across two spellings in the blob
                continue
            word = piece.isalpha() and piece.islower()
            at, occurrences = self._blob.find(key), 0
            while at != -1 and occurrences < _MAX_OCCURRENCES:
                occurrences += 1
                index = bisect.bisect_right(self._starts, at) - 1
                spelling = self._spellings[index]
                start = at - spelling.start
                out.append((index, start, start + len(key), word))
                at = self._blob.find(key, at + 1)
        return out

    def _window(self, destination: str, now: float) -> deque[_SentPiece]:
        window = self._windows.get(destination)
        if window is None:
            window = deque()
            self._windows[destination] = window
            while len(self._windows) > self.limits.max_destinations:
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(destination)
        horizon = now - self.limits.max_age
        while window and window[0].when < horizon:
            window.popleft()
        return window

    def _cage_window(self, now: float) -> deque[_SentPiece]:
        horizon = now - self.limits.max_age
        while self._cage and self._cage[0].when < horizon:
            self._cage.popleft()
        return self._cage

    @staticmethod
    def _covered(window: Iterable[_SentPiece], spelling: int) -> int:
        spans = sorted((s.start, s.end) for s in window if s.spelling == spelling)
        total, reach = 0, 0
        for start, end in spans:
            if end > reach:
                total += end - max(start, reach)
                reach = end
        return total

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
domains complete there. Plain lower-case words (a path part, a label) are held
apart, since every site's traffic interleaves there: they count only toward a
spelling of which other pieces already cover half (a password of words cut into
five-character pieces).

Pieces shorter than `min_piece` say too little alone. Per destination they extend
*chains*: a chain starts where a piece of `min_short` characters or more occurs in
a spelling, and grows only by a piece of two characters or more that continues it
exactly, in arrival order, within seven messages to that destination; one that
reaches the coverage completes the value. Each value's raw spelling is also kept
*loose* (lower-cased, separators kept: `-a` of `sk-ant` is two characters there, one
canonical), where a chain starts at a piece of two characters. One more set of
chains, for the whole cage, grows by the pieces sent anywhere a value may not go, in
arrival order over all destinations: short pieces round-robin over several sites.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from agentcage.policy.leaks.encodings import canonical
from agentcage.policy.leaks.matcher import Match
from agentcage.policy.leaks.protected import Protected, long_enough

# A piece found in more places than this is too generic to say which part was sent.
_MAX_OCCURRENCES = 16
# A one-character piece (a counter, a flag) continues a chain one time in 36 by
# chance, and requests carry several: only pieces of two characters or more grow one.
_LEAST_GROWTH = 2
# Messages to the destination a chain may go without growing. A chain that waited
# indefinitely would grow by chance: one in ~400 requests of random flags continues
# some chain, and the chains that grew outlive the others. Six leaves room for an
# agent's other requests to the site between the pieces, and the random probes of
# the unit tests complete nothing with it. (It was raised from two when the exfil
# bench's test let 2-character pieces through now and then; that turned out to be the
# test's judge, which found a refused piece `72` in the sink's port.)
_MAX_IDLE = 6


@dataclass(frozen=True, slots=True)
class WindowLimits:
    max_pieces: int = 256  # per destination
    max_age: float = 600.0  # seconds a piece stays in the window
    max_destinations: int = 1024
    min_piece: int = 4  # shorter pieces (canonical) only extend chains
    min_short: int = 3  # shortest piece that starts a chain
    min_loose: int = 2  # shortest piece that starts a chain in a loose spelling
    max_chains: int = 64  # per destination
    coverage: float = 0.8  # fraction of a spelling that must be covered
    max_pieces_per_message: int = 64


@dataclass(frozen=True, slots=True)
class _Spelling:
    secret: Protected
    technique: str
    start: int  # offset in its blob (the loose blob for a loose spelling)
    length: int
    loose: bool = False  # the raw value lower-cased, separators kept: chains only


@dataclass(slots=True)
class _SentPiece:
    """A stretch of one spelling that a piece sent to the destination covered."""

    when: float
    spelling: int
    start: int  # within the spelling
    end: int


@dataclass(frozen=True, slots=True)
class _Short:
    """A message's short pieces: canonical (for the spellings) and as sent,
    lower-cased (for the loose ones)."""

    tight: list[bytes]
    loose: list[bytes]

    def __bool__(self) -> bool:
        return bool(self.tight or self.loose)


@dataclass(slots=True)
class _Chain:
    """Consecutive pieces sent to one destination that spell `[start, end)` of one
    spelling, in the order they were sent."""

    when: float  # last grown
    spelling: int
    start: int
    end: int
    idle: int = 0  # messages to the destination since it last grew


class SplitDetector:
    """Bounded per-destination memory of which parts of which secrets were sent."""

    def __init__(self, secrets: Sequence[Protected], limits: WindowLimits | None = None) -> None:
        self.limits = limits or WindowLimits()
        spellings: list[_Spelling] = []
        chunks: list[bytes] = []
        loose: list[bytes] = []
        offset = loose_offset = 0
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
            lowered = secret.value.lower().replace(b"\0", b"")
            spellings.append(_Spelling(secret, "raw", loose_offset, len(lowered), loose=True))
            loose.append(lowered)
            loose_offset += len(lowered) + 1
        # NUL never occurs in a canonical spelling, so no piece spans two of them.
        self._blob = b"\0".join(chunks)
        self._loose_blob = b"\0".join(loose)
        # Every `min_piece`-long substring of every spelling: most pieces (words,
        # IDs) start with none of them and are rejected without scanning the blob.
        width = self.limits.min_piece
        self._grams = {c[i : i + width] for c in chunks for i in range(len(c) - width + 1)}
        self._tight = [n for n, s in enumerate(spellings) if not s.loose]
        self._loose = [n for n, s in enumerate(spellings) if s.loose]
        self._starts = [spellings[n].start for n in self._tight]
        self._loose_starts = [spellings[n].start for n in self._loose]
        self._spellings = spellings
        self._windows: OrderedDict[str, deque[_SentPiece]] = OrderedDict()
        self._chains: OrderedDict[str, list[_Chain]] = OrderedDict()
        self._cage_chains: list[_Chain] = []
        self._cage: deque[_SentPiece] = deque()
        self._cage_words: deque[_SentPiece] = deque()

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
        pieces = list(pieces)
        keys = [canonical(piece) for piece in pieces]
        short = _Short(
            [k for k in keys if 0 < len(k) < self.limits.min_piece and b"\0" not in k],
            [p.lower() for p in pieces if 0 < len(p) < self.limits.min_piece and b"\0" not in p],
        )
        found: dict[str, Match] = {}
        chains = self._destination_chains(destination, short)
        grown = self._grow_chains(chains, short, now) if chains is not None else []
        grown += self._grow_chains(self._cage_chains, short, now, host or destination)
        for index in grown:
            spelling = self._spellings[index]
            found.setdefault(
                spelling.secret.name, Match(spelling.secret, "chain:" + spelling.technique)
            )
        hits = self._locate(
            (p, k) for p, k in zip(pieces, keys, strict=True) if len(k) >= self.limits.min_piece
        )
        if hits:
            found.update((m.secret.name, m) for m in self._record(destination, hits, now, host))
        if found:  # that request is blocked; a later burst must cover the value again
            self._forget(set(found))
        return list(found.values())

    def _record(
        self, destination: str, hits: list[tuple[int, int, int, bool]], now: float, host: str
    ) -> list[Match]:
        window = self._window(destination, now)
        cage = self._cage_window(now)
        touched: set[int] = set()
        for index, start, end, word in hits:
            sent = _SentPiece(now, index, start, end)
            window.append(sent)
            if not self._spellings[index].secret.allowed_to(host or destination):
                (self._cage_words if word else cage).append(sent)
            touched.add(index)
        for held in (window, cage, self._cage_words):
            while len(held) > self.limits.max_pieces:
                held.popleft()
        found: dict[str, Match] = {}
        for index in touched:
            spelling = self._spellings[index]
            needed = self._needed(spelling.length)
            if max(self._covered(window, index), self._cage_covered(index)) >= needed:
                found.setdefault(
                    spelling.secret.name, Match(spelling.secret, "split:" + spelling.technique)
                )
        return list(found.values())

    def _cage_covered(self, spelling: int) -> int:
        """Coverage in the cage's window; words count once other pieces cover half."""
        covered = self._covered(self._cage, spelling)
        if 2 * covered < self._spellings[spelling].length:
            return covered
        return self._covered([*self._cage, *self._cage_words], spelling)

    def _forget(self, names: set[str]) -> None:
        """The cage's window forgets a value it completed. Chains do not: each later
        piece that continues one is refused too, so a value caught in short pieces
        does not leave its tail after the block."""

        def kept(held: Iterable[_SentPiece]) -> deque[_SentPiece]:
            return deque(s for s in held if self._spellings[s.spelling].secret.name not in names)

        self._cage, self._cage_words = kept(self._cage), kept(self._cage_words)

    def _destination_chains(self, destination: str, short: _Short) -> list[_Chain] | None:
        chains = self._chains.get(destination)
        if chains is None:
            if not short:
                return None
            chains = self._chains[destination] = []
            while len(self._chains) > self.limits.max_destinations:
                self._chains.popitem(last=False)
        else:
            self._chains.move_to_end(destination)
        return chains

    def _grow_chains(
        self, chains: list[_Chain], short: _Short, now: float, host: str | None = None
    ) -> list[int]:
        """Grow `chains` by this message's pieces (the longest piece that continues
        each), start new ones at its short pieces; return the spellings a chain now
        covers. With `host` (the cage's chains), only spellings of values that may not
        go there take part."""
        horizon = now - self.limits.max_age
        chains[:] = [c for c in chains if c.when >= horizon and c.idle <= _MAX_IDLE]
        done: list[int] = []
        for chain in chains:
            spelling = self._spellings[chain.spelling]
            if host is not None and spelling.secret.allowed_to(host):
                continue
            blob, keys = (
                (self._loose_blob, short.loose) if spelling.loose else (self._blob, short.tight)
            )
            at = spelling.start + chain.end
            room = spelling.length - chain.end
            grown = [
                len(k) for k in keys if _LEAST_GROWTH <= len(k) <= room and blob.startswith(k, at)
            ]
            chain.idle += 1
            if grown:
                chain.end += max(grown)
                chain.when, chain.idle = now, 0
                if chain.end - chain.start >= self._needed(spelling.length):
                    done.append(chain.spelling)
        starts = [
            *((k, False) for k in dict.fromkeys(short.tight) if len(k) >= self.limits.min_short),
            *((k, True) for k in dict.fromkeys(short.loose) if len(k) >= self.limits.min_loose),
        ]
        for key, loose in starts:
            for index, start, end in self._occurrences(key, loose):
                if host is None or not self._spellings[index].secret.allowed_to(host):
                    chains.append(_Chain(now, index, start, end))
        if len(chains) > self.limits.max_chains:
            # The newest kept; of those started or grown together, the longest (a
            # chain that grew must not give way to the ones its own piece started).
            chains.sort(key=lambda c: (c.when, c.end - c.start))
            del chains[: len(chains) - self.limits.max_chains]
        return done

    def _needed(self, length: int) -> float:
        """Characters that must be covered: `coverage` of the spelling, or all but a
        tail shorter than `min_piece` (the natural last piece of a short value, which
        is too short to be recorded itself)."""
        return min(self.limits.coverage * length, length - self.limits.min_piece + 1)

    def _locate(self, pieces: Iterable[tuple[bytes, bytes]]) -> list[tuple[int, int, int, bool]]:
        """(spelling, start, end, is a plain word) of each place a piece (given with its
        canonical form, made once in `observe`) was found."""
        out: list[tuple[int, int, int, bool]] = []
        for count, (piece, key) in enumerate(pieces):
            if count >= self.limits.max_pieces_per_message:
                break
            if len(key) < self.limits.min_piece or key[: self.limits.min_piece] not in self._grams:
                continue
            if b"\0" in key:  # would match across two spellings in the blob
                continue
            word = piece.isalpha() and piece.islower()
            out += ((index, start, end, word) for index, start, end in self._occurrences(key))
        return out

    def _occurrences(self, key: bytes, loose: bool = False) -> Iterator[tuple[int, int, int]]:
        """(spelling, start, end) of each place `key` occurs in a spelling (a loose
        one if `loose`), at most `_MAX_OCCURRENCES`."""
        blob, starts, indexes = (
            (self._loose_blob, self._loose_starts, self._loose)
            if loose
            else (self._blob, self._starts, self._tight)
        )
        at, occurrences = blob.find(key), 0
        while at != -1 and occurrences < _MAX_OCCURRENCES:
            occurrences += 1
            index = indexes[bisect.bisect_right(starts, at) - 1]
            start = at - self._spellings[index].start
            yield index, start, start + len(key)
            at = blob.find(key, at + 1)

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
        for held in (self._cage, self._cage_words):
            while held and held[0].when < horizon:
                held.popleft()
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
